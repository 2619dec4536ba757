//! What happens to the tabs and the machine they run on: tabs open, close (or crash
//! mid-request), freeze and thaw; the laptop sleeps and wakes; the wall clock steps back; the
//! network goes offline. `Act::Chaos` picks one of these (or a logout, refresh or sign-in)
//! every few seconds while a random run is not quiet.

use wasm_session::core::machine::Input;

use crate::world::{Act, Ev, World};

impl World {
    pub(crate) fn open_by_user(&mut self) {
        let t = self.open_tab();
        let d = self.rng.range(0.0, self.setup.fetch_every_ms);
        self.at(d, Ev::Act(Act::Fetch(t)));
    }

    pub(crate) fn close(&mut self, t: usize) {
        if self.live(t) {
            self.tabs[t].alive = false;
            self.release_all(t);
        }
    }

    pub(crate) fn freeze(&mut self, t: usize, ms: f64) {
        if self.live(t) && !self.tabs[t].frozen {
            self.tabs[t].frozen = true;
            self.at(ms, Ev::Act(Act::Thaw(t)));
        }
    }

    pub fn thaw(&mut self, t: usize) {
        if !self.live(t) || !self.tabs[t].frozen {
            return;
        }
        self.tabs[t].frozen = false;
        self.tabs[t].thawed_at = self.now;
        // What queued up while frozen runs now, in order, then the page-wake check.
        let deferred = std::mem::take(&mut self.tabs[t].deferred);
        for ev in deferred {
            self.at(0.0, ev);
        }
        self.at(0.0, Ev::Input(t, Input::Wake));
    }

    pub(crate) fn sleep(&mut self, ms: f64) {
        self.sleeping = true;
        for t in 0..self.tabs.len() {
            self.tabs[t].frozen = true;
        }
        self.at(ms, Ev::Act(Act::Wake));
    }

    pub(crate) fn wake(&mut self) {
        self.sleeping = false;
        for t in 0..self.tabs.len() {
            self.thaw(t);
        }
    }

    pub(crate) fn offline(&mut self, ms: f64) {
        self.browser.online = false;
        for t in 0..self.tabs.len() {
            self.deliver(t, Input::Online(false));
        }
        self.at(ms, Ev::Act(Act::Online));
    }

    pub(crate) fn back_online(&mut self) {
        self.browser.online = true;
        for t in 0..self.tabs.len() {
            self.deliver(t, Input::Online(true));
        }
    }

    /// One random thing, and the next one in 1 to 20 s.
    pub(crate) fn chaos(&mut self) {
        if self.quiet {
            return;
        }
        let live: Vec<usize> = (0..self.tabs.len()).filter(|&t| self.live(t)).collect();
        let pick = |w: &mut World| live.get(w.rng.below(live.len().max(1))).copied();
        match self.rng.below(12) {
            0 | 1 => {
                if let Some(t) = pick(self) {
                    let ms = self.rng.range(100.0, 40_000.0);
                    self.act(Act::Freeze(t, ms));
                }
            }
            2 => {
                if live.len() > 1 {
                    if let Some(t) = pick(self) {
                        self.act(Act::Close(t));
                    }
                }
            }
            3 => {
                if live.len() < 6 {
                    self.act(Act::Open);
                }
            }
            4 if !self.sleeping => {
                let ms = self.rng.range(10_000.0, 600_000.0);
                self.act(Act::Sleep(ms));
            }
            5 => {
                // NTP-sized corrections; `defect_6_...` steps an hour between tabs that talk.
                let ms = self.rng.range(100.0, 60_000.0);
                self.act(Act::ClockBack(ms));
            }
            6 if self.browser.online => {
                let ms = self.rng.range(1_000.0, 60_000.0);
                self.act(Act::Offline(ms));
            }
            7 => {
                if let Some(t) = pick(self) {
                    self.act(Act::Logout(t));
                    let d = self.rng.range(100.0, 5_000.0);
                    self.at(d, Ev::Act(Act::Login(t)));
                }
            }
            8 => {
                if let Some(t) = pick(self) {
                    self.act(Act::Refresh(t));
                }
            }
            _ => {
                if let Some(t) = pick(self) {
                    self.act(Act::Login(t));
                }
            }
        }
        let d = self.rng.range(1_000.0, 20_000.0);
        self.at(d, Ev::Act(Act::Chaos));
    }
}
