//! `flotilla` in `manager-dict`: a `flotilla::manager::Manager` (its server a child process,
//! this program re-executed) and one `Dict<u64, u64>` proxy, used from the calling thread.

use flotilla::manager::Manager;

use super::{Failure, Measurement, System};
use crate::scenarios::{self, Plan, Scenario};

/// The manager row.
#[derive(Debug)]
pub(crate) struct FlotillaManager;

impl System for FlotillaManager {
    fn name(&self) -> &'static str {
        "flotilla"
    }

    fn takes_part(&self, scenario: Scenario) -> bool {
        scenario == Scenario::ManagerDict
    }

    fn measure(&self, plan: &Plan) -> Result<Measurement, Failure> {
        let manager = Manager::new().map_err(|err| err.to_string())?;
        let dict = manager.dict::<u64, u64>().map_err(|err| err.to_string())?;
        let samples = scenarios::repeat(plan.reps, || scenarios::manager_dict(&dict, plan.items))?;
        Ok(Measurement::from_samples(plan.items, &samples))
    }

    fn idle_memory_here(&self, _workers: usize) -> Result<i64, String> {
        Err("the manager row measures time only".to_owned())
    }
}
