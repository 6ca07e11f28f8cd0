//! [`DynExecutor`]: [`Executor`] as a trait object, for programs that pick the backend at run
//! time.

use crate::error::Error;
use crate::executor::{Executor, Shutdown, Task};
use crate::future::Future;
use crate::map::Map;

/// The inputs [`DynExecutor::map`] takes: any `Send` iterator, boxed.
pub type DynInputs<'a, A> = Box<dyn Iterator<Item = A> + Send + 'a>;

/// An [`Executor`] that runs the task `T`, as a trait object: `Box<dyn DynExecutor<T>>`
/// holds a thread pool, a process pool or a cluster executor, chosen at run time.
///
/// `dyn Executor` is not possible: [`Executor::submit`] is generic over the task, and a
/// trait object cannot have generic methods (the compiler would need one copy of the method
/// per task type in the vtable). `DynExecutor` moves the task type into the trait, which
/// leaves no generic method: the vtable holds `submit` for `T` only. It is implemented for
/// every `Executor`, so any backend converts (`Box::new(pool) as Box<dyn DynExecutor<T>>`),
/// and each call does exactly what the backend's own method does (same futures, same
/// cancellation, same `Drop`).
///
/// One trait object runs one task type. A program that submits several can hold one object
/// per task, or name them all in a trait of its own:
/// `trait Backend: DynExecutor<ResizeTask> + DynExecutor<EncodeTask> {}` with
/// `impl<E: Executor> Backend for E {}` gives `Box<dyn Backend>`.
///
/// # Examples
///
/// ```
/// use flotilla::{DynExecutor, ThreadPoolExecutor};
///
/// #[flotilla::task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn pick(workers: usize) -> Result<Box<dyn DynExecutor<SquareTask>>, flotilla::Error> {
///     // Decided at run time: here always threads, in a real program perhaps processes.
///     Ok(Box::new(ThreadPoolExecutor::builder().max_workers(workers).build()?))
/// }
///
/// let executor = pick(2)?;
/// assert_eq!(executor.submit(SquareTask, 7)?.result()?, 49);
/// let squares: Vec<u64> = executor
///     .map(SquareTask, Box::new(0..4))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(squares, [0, 1, 4, 9]);
/// # Ok::<(), flotilla::Error>(())
/// ```
///
/// # Dropping
///
/// Dropping the box drops the executor inside, with the backend's usual meaning (see
/// [`Executor`]).
pub trait DynExecutor<T: Task> {
    /// [`Executor::submit`] for `T`.
    ///
    /// # Errors
    ///
    /// As [`Executor::submit`].
    fn submit(&self, task: T, args: T::Args) -> Result<Future<T::Output>, Error>;

    /// [`Executor::map`] for `T`, over boxed inputs.
    fn map<'a>(
        &'a self,
        task: T,
        inputs: DynInputs<'a, T::Args>,
    ) -> Map<'a, DynInputs<'a, T::Args>, T::Output>;

    /// [`Executor::shutdown`].
    fn shutdown(&self, how: Shutdown);

    /// [`Executor::max_workers`].
    fn max_workers(&self) -> usize;
}

impl<E: Executor, T: Task> DynExecutor<T> for E {
    fn submit(&self, task: T, args: T::Args) -> Result<Future<T::Output>, Error> {
        Executor::submit(self, task, args)
    }

    fn map<'a>(
        &'a self,
        task: T,
        inputs: DynInputs<'a, T::Args>,
    ) -> Map<'a, DynInputs<'a, T::Args>, T::Output> {
        Executor::map(self, task, inputs)
    }

    fn shutdown(&self, how: Shutdown) {
        Executor::shutdown(self, how);
    }

    fn max_workers(&self) -> usize {
        Executor::max_workers(self)
    }
}
