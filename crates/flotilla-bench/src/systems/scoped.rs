//! The rows of `scope-cpu` and `scope-small`: scoped work on a borrowed slice.
//!
//! Each system applies a function to every input of a borrowed `&[u64]` and returns the
//! outputs in order, in its own idiomatic way:
//!
//! - `flotilla scope`: `ThreadPoolExecutor::scope`, one task per input writing into its slot of
//!   a borrowed `&mut [u64]` (the calling thread helps run the tasks once it has spawned them);
//! - `flotilla map_borrowed`: `ThreadPoolExecutor::map_borrowed(f, inputs)`, a few chunks per
//!   worker;
//! - `rayon scope`: `rayon::ThreadPool::scope`, one `spawn` per input writing into its slot;
//! - `rayon par_iter`: `inputs.par_iter().map(f).collect()` inside the pool;
//! - `std::thread::scope`: the floor: one fresh thread per worker, each taking an equal share
//!   of the slice, started and joined in every run.

use std::fmt;

use flotilla::ThreadPoolExecutor;
use rayon::prelude::*;

use super::{Failure, Measurement, System};
use crate::scenarios::{self, Plan, Scenario};

/// How a system applies `f` to a borrowed slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `ThreadPoolExecutor::scope`, a task per input.
    FlotillaScope,
    /// `ThreadPoolExecutor::map_borrowed`.
    FlotillaMapBorrowed,
    /// `rayon::ThreadPool::scope`, a spawn per input.
    RayonScope,
    /// `par_iter().map(f).collect()`.
    RayonParIter,
    /// `std::thread::scope`, a share of the slice per thread.
    StdScope,
}

impl Kind {
    /// Every kind, the baseline (`flotilla scope`) first.
    pub(crate) const ALL: [Kind; 5] = [
        Kind::FlotillaScope,
        Kind::FlotillaMapBorrowed,
        Kind::RayonScope,
        Kind::RayonParIter,
        Kind::StdScope,
    ];

    /// The row's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::FlotillaScope => "flotilla scope",
            Kind::FlotillaMapBorrowed => "flotilla map_borrowed",
            Kind::RayonScope => "rayon scope",
            Kind::RayonParIter => "rayon par_iter",
            Kind::StdScope => "std::thread::scope",
        }
    }
}

/// What a scoped scenario's bench body needs: apply `f` to every input of a borrowed slice
/// and return the outputs in input order.
pub(crate) trait ScopedPool {
    /// `f` over `inputs`, outputs in order.
    fn apply(&self, f: fn(u64) -> u64, inputs: &[u64]) -> Result<Vec<u64>, String>;
}

/// A system of the scoped scenarios, with the pool it runs on.
pub(crate) enum ScopedRunner {
    /// A flotilla pool, through `scope` or `map_borrowed`.
    Flotilla(Kind, ThreadPoolExecutor),
    /// A rayon pool, through `scope` or `par_iter`.
    Rayon(Kind, rayon::ThreadPool),
    /// Fresh threads per run.
    Std(usize),
}

impl fmt::Debug for ScopedRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopedRunner::Flotilla(kind, _) | ScopedRunner::Rayon(kind, _) => {
                f.debug_tuple("ScopedRunner").field(kind).finish()
            }
            ScopedRunner::Std(threads) => f.debug_tuple("Std").field(threads).finish(),
        }
    }
}

/// The runner of `kind` with `workers` threads.
pub(crate) fn build(kind: Kind, workers: usize) -> Result<ScopedRunner, String> {
    match kind {
        Kind::FlotillaScope | Kind::FlotillaMapBorrowed => ThreadPoolExecutor::builder()
            .max_workers(workers)
            .build()
            .map(|pool| ScopedRunner::Flotilla(kind, pool))
            .map_err(|err| err.to_string()),
        Kind::RayonScope | Kind::RayonParIter => rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .map(|pool| ScopedRunner::Rayon(kind, pool))
            .map_err(|err| err.to_string()),
        Kind::StdScope => Ok(ScopedRunner::Std(workers.max(1))),
    }
}

impl ScopedPool for ScopedRunner {
    fn apply(&self, f: fn(u64) -> u64, inputs: &[u64]) -> Result<Vec<u64>, String> {
        let mut out = vec![0u64; inputs.len()];
        match self {
            ScopedRunner::Flotilla(Kind::FlotillaMapBorrowed, pool) => {
                return pool
                    .map_borrowed(|x: &u64| f(*x), inputs)
                    .map_err(|err| err.to_string());
            }
            ScopedRunner::Flotilla(_, pool) => pool
                .scope(|s| {
                    for (slot, &x) in out.iter_mut().zip(inputs) {
                        s.spawn(move || *slot = f(x))?.detach();
                    }
                    Ok::<(), flotilla::Error>(())
                })
                .map_err(|err| err.to_string())?,
            ScopedRunner::Rayon(Kind::RayonParIter, pool) => {
                return Ok(pool.install(|| inputs.par_iter().map(|&x| f(x)).collect()));
            }
            ScopedRunner::Rayon(_, pool) => pool.scope(|s| {
                for (slot, &x) in out.iter_mut().zip(inputs) {
                    s.spawn(move |_| *slot = f(x));
                }
            }),
            ScopedRunner::Std(threads) => {
                let share = inputs.len().div_ceil(*threads).max(1);
                std::thread::scope(|s| {
                    for (slots, xs) in out.chunks_mut(share).zip(inputs.chunks(share)) {
                        s.spawn(move || {
                            for (slot, &x) in slots.iter_mut().zip(xs) {
                                *slot = f(x);
                            }
                        });
                    }
                });
            }
        }
        Ok(out)
    }
}

/// One row of the scoped scenarios.
#[derive(Debug)]
pub(crate) struct Scoped(pub(crate) Kind);

impl System for Scoped {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn takes_part(&self, scenario: Scenario) -> bool {
        Scenario::SCOPED.contains(&scenario)
    }

    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure> {
        let runner = build(self.0, plan.workers)?;
        let samples = scenarios::time_scoped(&runner, plan)?;
        Ok(Measurement::from_samples(plan.items, &samples))
    }

    fn idle_memory_here(&self, _workers: usize) -> Result<i64, String> {
        Err("the scoped systems do not take part in idle-memory".to_owned())
    }
}
