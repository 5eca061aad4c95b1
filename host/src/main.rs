//! The `wasmbot` command line; see `cli` for the commands.

fn main() -> std::process::ExitCode {
    wasmbot::cli::main()
}
