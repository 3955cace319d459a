fn main() {
    std::process::exit(pisa::cli::main());
}
