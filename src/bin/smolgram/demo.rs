pub(crate) fn run(_c: smolgram::config::Config, _s: bool) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
