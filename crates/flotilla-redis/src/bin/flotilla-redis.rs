//! `flotilla-redis status`: what a flotilla namespace on a Redis server holds right now.

use std::process::ExitCode;

const USAGE: &str = "usage: flotilla-redis status [--url URL] [--prefix PREFIX]\n\
    URL defaults to $REDIS_URL, then redis://127.0.0.1; PREFIX to flotilla";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1".into());
    let mut prefix = String::from("flotilla");
    match args.next().as_deref() {
        Some("status") => {}
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--url", Some(value)) => url = value,
            ("--prefix", Some(value)) => prefix = value,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match flotilla_redis::Status::fetch(&url, &prefix) {
        Ok(status) => {
            print!("{status}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("flotilla-redis: {err}");
            ExitCode::FAILURE
        }
    }
}
