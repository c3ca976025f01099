fn main() -> std::process::ExitCode {
    conductor::cli::main()
}
