fn main() -> std::process::ExitCode {
    canopy::cli::main()
}
