//! Random schedules: a setup and a run drawn from each seed, then a quiet end in which
//! everything settles. `random_schedules` explores `SIM_SEEDS` seeds from `SIM_FIRST_SEED`;
//! `replay` runs the one seed in `SIM_SEED` (ignored otherwise).

use crate::saboteurs::Saboteur;
use crate::setup::random_setup;
use crate::world::{Act, Rng, Stats, Violation, World};

/// The run of one seed (with a planted bug, if given): its stats, or the first violation.
pub fn run_seed(seed: u64, saboteur: Option<Saboteur>) -> Result<Stats, Violation> {
    let mut rng = Rng(seed);
    let mut setup = random_setup(&mut rng);
    setup.saboteur = saboteur;
    let duration = setup.duration_ms;
    let mut w = World::new(setup, seed);
    w.schedule_random();
    let _ = w.try_run_for(duration);
    if let Some(v) = w.violation.take() {
        return Err(v);
    }
    // A quiet end: no chaos, no faults; everything settles and every caller is answered.
    w.quiet = true;
    w.setup.fault_rate = 0.0;
    if w.sleeping {
        w.act(Act::Wake);
    }
    for t in 0..w.tabs.len() {
        w.thaw(t);
    }
    if !w.browser.online {
        w.act(Act::Online);
    }
    let c = w.setup.config.clone();
    let _ = w.try_run_for(c.lock_timeout_ms + 3.0 * (c.request_timeout_ms + 1_000.0) + c.retry_max_ms + 10_000.0);
    match w.violation.take() {
        Some(v) => Err(v),
        None => Ok(w.stats),
    }
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[test]
fn random_schedules() {
    let seeds = env("SIM_SEEDS").unwrap_or(300);
    let first = env("SIM_FIRST_SEED").unwrap_or(0);
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    for seed in first..first + seeds {
        match run_seed(seed, None) {
            Ok(s) => total.add(&s),
            Err(v) => panic!("{v}"),
        }
    }
    println!(
        "simulation: {seeds} schedules, {} steps, {} invariant checks, {} logins, {} token requests, {} refreshes, \
         {} API calls ok, {} 401s to the app, {} reuses after a lost answer (tab died or froze mid-request, or the \
         answer came after its timeout), {} OpenID Connect sign-ins answered ({} code exchanges), in {:.1} s",
        total.steps,
        total.checks,
        total.logins,
        total.token_requests,
        total.refreshes,
        total.api_ok,
        total.api_401_to_app,
        total.excused_reuse,
        total.oidc_sign_ins,
        total.code_exchanges,
        started.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "replays one seed: SIM_SEED=<seed> cargo test --test sim replay -- --ignored --nocapture"]
fn replay() {
    let seed = env("SIM_SEED").expect("SIM_SEED=<seed> names the schedule to replay");
    let saboteur = std::env::var("SIM_SABOTEUR").ok().map(|name| {
        Saboteur::parse(&name).unwrap_or_else(|| {
            let names: Vec<_> = Saboteur::ALL.iter().map(|s| s.name()).collect();
            panic!("SIM_SABOTEUR={name}: not one of {names:?}")
        })
    });
    match run_seed(seed, saboteur) {
        Ok(stats) => println!("seed {seed}: {stats:?}"),
        Err(v) => panic!("{v}"),
    }
}
