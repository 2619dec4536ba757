//! Messages from the other tabs: their tokens, logouts, refreshes, activity, nonces.

use super::io::Transport;
use super::session::{current, Source};
use super::{Machine, Phase};
use crate::core::protocol::{Envelope, Message, Why};

impl Machine {
    pub(super) fn message(&mut self, now: f64, env: Envelope) {
        if self.transport == Transport::None {
            return;
        }
        let Envelope { from, msg, with_key } = env;
        match msg {
            Message::Tokens { stamp, tokens, why, after_401 } => {
                if self.accepts(&stamp) {
                    self.dpop.adopted(with_key, &mut self.out);
                    let source = if why == Why::Share { Source::Copy } else { Source::Peer };
                    self.install(now, tokens, stamp, source, after_401);
                } else if self.stamp() == Some(&stamp) {
                    // Already read from shared storage: the key comes this way.
                    self.dpop.adopted(with_key, &mut self.out);
                }
                if why == Why::Share {
                    self.become_ready(now);
                }
            }
            Message::Logout { seq, reason } => {
                if seq >= self.seq {
                    if self.session.is_some() {
                        self.end(now, reason.seen_from_other_tab(), Some(seq));
                    } else {
                        self.seq = seq;
                    }
                }
            }
            Message::Refreshing { timeout_ms } => self.refresh.peer_refreshing(&from, now, timeout_ms),
            Message::Claim => self.refresh.peer_claim(from, now, &mut self.out),
            Message::RefreshFailed => {
                let cur = current(&self.session, self.seq, self.cfg.mode());
                let outcome = self.refresh.peer_failed(&from, now, cur, &mut self.out);
                self.apply(now, outcome);
            }
            Message::Hello => {
                if self.phase != Phase::Ready {
                    return;
                }
                let live = self.tokens().is_some_and(|t| t.expires_at > now || self.renewable(t));
                if live {
                    self.share(Why::Share);
                } else {
                    self.out.post(Message::SignedOut { seq: self.seq });
                }
                self.refresh.greet(now, &mut self.out);
            }
            Message::Activity { age_ms } => self.activity(now, age_ms, false),
            Message::SignedOut { seq } => {
                if self.session.is_none() {
                    self.seq = self.seq.max(seq);
                }
                self.become_ready(now);
            }
            Message::Nonce { origin, nonce } => self.dpop.note_nonce(origin, nonce, true, &mut self.out),
        }
    }
}
