//! A driver for callgrind: `N` scoped tasks (or plain spawns) on a 2-worker pool.
//! `valgrind --tool=callgrind target/release/examples/scope_callgrind scope 20000`
use flotilla_core::ThreadPoolExecutor;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "scope".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let inputs: Vec<u64> = (0..n as u64).collect();
    let mut out = vec![0u64; n];
    match mode.as_str() {
        "scope" => pool.scope(|s| {
            for (slot, &x) in out.iter_mut().zip(&inputs) {
                s.spawn(move || *slot = x.wrapping_mul(3)).unwrap().detach();
            }
        }),
        "spawn" => {
            let futs: Vec<_> = inputs
                .iter()
                .map(|&x| pool.spawn(move || x.wrapping_mul(3)).unwrap())
                .collect();
            for (slot, f) in out.iter_mut().zip(futs) {
                *slot = f.into_result().unwrap();
            }
        }
        _ => panic!("mode: scope | spawn"),
    }
    assert!(
        out.iter()
            .zip(&inputs)
            .all(|(o, x)| *o == x.wrapping_mul(3))
    );
}
