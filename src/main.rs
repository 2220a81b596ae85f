#![forbid(unsafe_code)]
/// mimalloc's per-thread heaps: glibc malloc's arena locks showed up as the top cost under
/// concurrent lookups (benches/lookup.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cpis::cli::main()
}
