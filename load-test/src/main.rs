//! `load-test`: runs one scenario against a running fleet and prints the
//! table; `--json` and `--plot` write the report and the timeline. Exits 2
//! when messages were lost.

use clap::Parser;
use load_test::cli::Cli;
use load_test::{Workers, coordinator, worker};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("load-test: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(index) = cli.worker_index {
        return match runtime.block_on(worker::process_main(index)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("load-test worker {index}: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let Some(scenario) = cli.scenario else {
        eprintln!(
            "load-test: name a scenario: fanout, rooms, idle, connect, aux or migrate (see --help)"
        );
        return std::process::ExitCode::FAILURE;
    };
    if let load_test::cli::Scenario::Migrate(args) = &scenario {
        return match runtime.block_on(load_test::migrate::run(args)) {
            Ok(report) => {
                print!("{}", report.table());
                if let Some(path) = &args.common.json {
                    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
                    if let Err(e) = std::fs::write(path, json) {
                        eprintln!("load-test: cannot write {}: {e}", path.display());
                    }
                }
                if report.lost > 0 || report.duplicates > 0 {
                    eprintln!(
                        "\n!!! LOST {} MESSAGE(S), {} DUPLICATE(S) !!!\n",
                        report.lost, report.duplicates
                    );
                    return std::process::ExitCode::from(2);
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("load-test: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let mode = if scenario.common().workers > 1 {
        match std::env::current_exe() {
            Ok(exe) => Workers::Processes(exe),
            Err(e) => {
                eprintln!("load-test: cannot find my own executable for --workers: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    } else {
        Workers::InProcess
    };
    match runtime.block_on(coordinator::run(scenario, mode)) {
        Ok(report) => {
            print!("{}", report.table());
            if report.losses.total > 0 || report.losses.duplicates > 0 {
                let l = &report.losses;
                eprintln!(
                    "\n!!! LOST {} MESSAGE(S): {} in gaps, {} at the tail, {} never acknowledged; {} duplicate(s) !!!\n",
                    l.total, l.gaps, l.tail, l.unacked, l.duplicates
                );
                return std::process::ExitCode::from(2);
            }
            if report.join_failed > 0 {
                eprintln!("load-test: {} connection(s) could not join", report.join_failed);
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load-test: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
