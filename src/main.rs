fn main() -> std::process::ExitCode {
    cpis::cli::main()
}
