//! A config-file bot's `run` action: one program started with a fixed argv
//! (no shell), a clean environment, a timeout and an output cap (see: #14).
//!
//! The user's words, when the command takes them, are appended as argv
//! entries of their own: `; rm -rf /` is one argument, never a command line.
//! stdout and stderr go into one pipe, read on the executor; at the cap or
//! the timeout the program's whole process group is killed (so a shell's
//! children go too), and so is it when the run is abandoned (the handler's
//! timeout, a stop). What it printed is cleaned before anyone sees it:
//! invalid UTF-8 replaced, control characters other than newline and tab
//! shown as `�`, the token redacted.
//!
//! Must not: pass smolgram's environment on (the token is in it), run
//! anything through a shell, or block the executor thread on the program.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt};
use rustix::process::{kill_process_group, Pid, Signal};
use smolgram::api::Token;

/// How often a program whose output has ended is asked whether it exited.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// How long a killed program is waited for before it is left to exit.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// What to start, and its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Program {
    /// The program (an absolute path) and its fixed arguments.
    pub(crate) argv: Vec<String>,
    /// The whole environment the program gets.
    pub(crate) env: Vec<(String, String)>,
    /// How long it may run.
    pub(crate) timeout: Duration,
    /// The most output kept; at this much the program is killed.
    pub(crate) max_output: usize,
}

/// How a run ended.
#[derive(Debug)]
pub(crate) enum End {
    /// It exited (or was killed by a signal of its own).
    Exited(ExitStatus),
    /// It printed [`Program::max_output`] bytes and was killed.
    Cut,
    /// It ran past [`Program::timeout`] and was killed.
    TimedOut,
    /// It could not be started.
    NotStarted(io::Error),
}

/// What a run printed (stdout and stderr as they came), and how it ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) output: Vec<u8>,
    pub(crate) end: End,
}

/// Runs `program` with `words` appended to its argv, each one argument.
pub(crate) async fn run(program: &Program, words: &[&str]) -> Outcome {
    let started = match start(program, words) {
        Ok(started) => started,
        Err(e) => {
            return Outcome {
                output: Vec::new(),
                end: End::NotStarted(e),
            }
        }
    };
    let (mut group, mut pipe) = started;
    let deadline = Instant::now() + program.timeout;
    let mut output = Vec::new();
    let read = read_capped(&mut pipe, &mut output, program.max_output);
    let timer = async {
        Timer::at(deadline).await;
        Ok(false)
    };
    let end = match future::or(read, timer).await {
        // The pipe ended: every writer closed, so the program is exiting.
        Ok(true) => match group.exited_by(deadline).await {
            Some(status) => End::Exited(status),
            None => End::TimedOut,
        },
        Ok(false) if output.len() >= program.max_output => End::Cut,
        Ok(false) => End::TimedOut,
        Err(e) => {
            log::warn!("run could not read the program's output error={e}");
            End::TimedOut
        }
    };
    if !matches!(end, End::Exited(_)) {
        group.kill().await;
    }
    Outcome { output, end }
}

/// Starts the program in a process group of its own, its stdout and
/// stderr the write end of one pipe; the read end for the executor.
fn start(program: &Program, words: &[&str]) -> io::Result<(Group, Async<File>)> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let stderr = write.try_clone()?;
    let mut command = Command::new(&program.argv[0]);
    command
        .args(&program.argv[1..])
        .args(words)
        .env_clear()
        .envs(program.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    let child = command.spawn()?;
    // Our copies of the write end go with `command`, so that the pipe ends
    // when the program (and whatever it started) is done with it.
    drop(command);
    let group = Group { child: Some(child) };
    Ok((group, Async::new(File::from(read))?))
}

/// Reads into `output` until the pipe ends (`true`) or `max` bytes are in
/// (`false`).
async fn read_capped(pipe: &mut Async<File>, output: &mut Vec<u8>, max: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    while output.len() < max {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(true);
        }
        let room = max - output.len();
        output.extend_from_slice(&chunk[..n.min(room)]);
    }
    Ok(false)
}

/// The started program's process group: killed if dropped before it exited.
struct Group {
    child: Option<Child>,
}

impl Group {
    /// Its exit status, asked every [`EXIT_POLL`] until `deadline` (std has
    /// no async wait; the pipe's end already says the exit is near).
    async fn exited_by(&mut self, deadline: Instant) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => Timer::after(EXIT_POLL).await,
                Ok(None) | Err(_) => return None,
            };
        }
    }

    /// Kills the whole group, then reaps the program within [`KILL_WAIT`].
    async fn kill(&mut self) {
        self.signal();
        let deadline = Instant::now() + KILL_WAIT;
        if self.exited_by(deadline).await.is_none() && self.child.is_some() {
            log::warn!("run: a killed program has not exited after {KILL_WAIT:?}");
            self.child = None;
        }
    }

    fn signal(&self) {
        if let Some(pid) = self
            .child
            .as_ref()
            .and_then(|c| Pid::from_raw(c.id() as i32))
        {
            // The group may be gone already; nothing to do then.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal();
    }
}

/// The output as text that is safe to show: invalid UTF-8 and control
/// characters (but newline and tab) as `�`, carriage returns dropped, the
/// token redacted.
pub(crate) fn clean(output: &[u8], token: &Token) -> String {
    let text: String = String::from_utf8_lossy(output)
        .chars()
        .filter(|&c| c != '\r')
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect();
    token.redact(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(argv: &[&str]) -> Program {
        Program {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("LANG".into(), "C".into())],
            timeout: Duration::from_secs(5),
            max_output: 1024,
        }
    }

    fn sh(script: &str) -> Program {
        program(&["/bin/sh", "-c", script, "sh"])
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        future::block_on(f)
    }

    #[test]
    fn words_reach_the_program_as_literal_arguments_one_each() {
        let words = ["; rm -rf /", "$(id)", "`id`", "a\nb", "--flag", "*"];
        let out = block_on(run(&sh(r#"for a; do printf '<%s>' "$a"; done"#), &words));
        assert!(
            matches!(out.end, End::Exited(s) if s.success()),
            "{:?}",
            out.end
        );
        assert_eq!(
            String::from_utf8(out.output).unwrap(),
            "<; rm -rf /><$(id)><`id`><a\nb><--flag><*>"
        );
    }

    #[test]
    fn the_environment_is_only_what_the_config_names() {
        std::env::set_var("SMOLGRAM_TEST_SECRET", "leak");
        let out = block_on(run(&program(&["/usr/bin/env"]), &[]));
        assert_eq!(String::from_utf8(out.output).unwrap(), "LANG=C\n");
    }

    #[test]
    fn output_over_the_cap_is_cut_and_the_program_killed() {
        let out = block_on(run(&program(&["/usr/bin/yes"]), &[]));
        assert!(matches!(out.end, End::Cut), "{:?}", out.end);
        assert_eq!(out.output.len(), 1024);
    }

    #[test]
    fn a_program_past_its_timeout_is_killed_with_its_children() {
        let pid_file = std::env::temp_dir().join(format!("smolgram-run-{}", std::process::id()));
        let script = format!(
            "sleep 30 & echo $! > {}; wait; echo never",
            pid_file.display()
        );
        let mut slow = sh(&script);
        slow.timeout = Duration::from_millis(300);
        let out = block_on(run(&slow, &[]));
        assert!(matches!(out.end, End::TimedOut), "{:?}", out.end);
        assert!(out.output.is_empty());
        // The shell's own child, in its group, is killed too.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let deadline = Instant::now() + Duration::from_secs(5);
        let dead = || std::fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z "));
        while !dead() {
            assert!(Instant::now() < deadline, "the background sleep lives on");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::remove_file(pid_file).unwrap();
    }

    #[test]
    fn exit_status_and_stderr_come_back() {
        let out = block_on(run(&sh("echo out; echo err >&2; exit 3"), &[]));
        assert!(matches!(out.end, End::Exited(s) if s.code() == Some(3)));
        assert_eq!(out.output, b"out\nerr\n");
    }

    #[test]
    fn a_missing_program_is_not_started() {
        let out = block_on(run(&program(&["/nonexistent/program"]), &[]));
        assert!(matches!(out.end, End::NotStarted(_)), "{:?}", out.end);
    }

    #[test]
    fn cleaned_output_has_no_token_and_no_control_characters() {
        let token = Token::parse("123456:SECRET-part_x").unwrap();
        let raw = b"token 123456:SECRET-part_x\r\n\x1b[31mred\x07\tok\xff";
        let text = clean(raw, &token);
        assert_eq!(text, "token [token]\n\u{FFFD}[31mred\u{FFFD}\tok\u{FFFD}");
    }
}
