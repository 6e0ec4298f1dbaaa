//! The `slo-agent` binary: parse the command line, hand over to the library.

fn main() -> std::process::ExitCode {
    slo_agent::cli::main()
}
