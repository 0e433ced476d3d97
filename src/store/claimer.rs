//! Who claims: this process's identity, written beside each row it claims and each run it
//! starts, and the judgement, from another process's identity, of whether that process is
//! known to be gone (so that what it held can be taken over at once rather than after its
//! lease).
//!
//! An identity is `HOST/BOOT/PIDNS/PID/START`: the host name, the kernel's boot id, the PID
//! namespace, the process id and the process's start time (clock ticks after boot, field 22
//! of `/proc/PID/stat`). A process is judged only by one on the same host, the same boot and
//! the same PID namespace: there a PID that no longer exists, or that names a process started
//! at another time (the PID was reused), or a zombie, is a process that is gone. Another host,
//! another boot (two machines may share a name) or another namespace cannot be judged, nor a
//! PID not found where /proc hides other users' processes (`hidepid`): their rows wait for
//! their lease.

use std::sync::OnceLock;

/// A claimer's identity, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimer {
    host: String,
    boot: String,
    pid_ns: String,
    pid: u32,
    start: u64,
}

/// What can be said of a claimer from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// This very process.
    Me,
    /// A process of this host that is running.
    Running,
    /// A process of this host that is gone: what it holds may be taken over now.
    Gone,
    /// Another host, boot or namespace, or an identity that does not parse: its lease holds.
    Unknown,
}

impl Claimer {
    /// This process, read once (None where `/proc` does not tell: then nothing is judged).
    pub fn this_process() -> Option<&'static Claimer> {
        static ME: OnceLock<Option<Claimer>> = OnceLock::new();
        ME.get_or_init(|| {
            let pid = std::process::id();
            Some(Claimer {
                host: read_trimmed("/proc/sys/kernel/hostname")?,
                boot: read_trimmed("/proc/sys/kernel/random/boot_id")?,
                pid_ns: pid_namespace("self")?,
                pid,
                start: proc_stat(&pid.to_string())?.1,
            })
        })
        .as_ref()
    }

    /// This process's identity as stored (None where it is unknown).
    pub fn this_process_stored() -> Option<&'static str> {
        static ME: OnceLock<Option<String>> = OnceLock::new();
        ME.get_or_init(|| Self::this_process().map(Claimer::to_string))
            .as_deref()
    }

    /// An identity as stored; None when it does not parse.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.rsplitn(5, '/');
        let start = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let pid_ns = parts.next()?.to_string();
        let boot = parts.next()?.to_string();
        let host = parts.next()?.to_string();
        Some(Self {
            host,
            boot,
            pid_ns,
            pid,
            start,
        })
    }

    /// The process, for a message: "process PID on HOST".
    pub fn describe(&self) -> String {
        format!("process {} on {}", self.pid, self.host)
    }

    /// Whether the process `self` names is this one, running, gone, or cannot be judged, as
    /// seen by `me`.
    pub fn liveness(&self, me: &Claimer) -> Liveness {
        if self == me {
            return Liveness::Me;
        }
        if (&self.host, &self.boot, &self.pid_ns) != (&me.host, &me.boot, &me.pid_ns) {
            return Liveness::Unknown;
        }
        match proc_stat(&self.pid.to_string()) {
            Some((state, start)) if start == self.start && state != 'Z' && state != 'X' => {
                Liveness::Running
            }
            // Another process under the PID, or one that has ended.
            Some(_) => Liveness::Gone,
            // No such process; unless /proc hides other users' processes from this one.
            None if proc_hides_processes() => Liveness::Unknown,
            None => Liveness::Gone,
        }
    }
}

impl std::fmt::Display for Claimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            host,
            boot,
            pid_ns,
            pid,
            start,
        } = self;
        write!(f, "{host}/{boot}/{pid_ns}/{pid}/{start}")
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    // A '/' would make the stored identity ambiguous (a host name has none).
    (!s.is_empty() && !s.contains('/')).then(|| s.to_string())
}

/// The PID namespace of `/proc/WHO`: its inode number.
fn pid_namespace(who: &str) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/{who}/ns/pid")).ok()?;
    let link = link.to_str()?;
    let inode = link.strip_prefix("pid:[")?.strip_suffix(']')?;
    Some(inode.to_string())
}

/// Whether /proc is mounted with `hidepid` (other users' processes hidden), or its mount
/// cannot be read: then a process not found may be one that is hidden.
fn proc_hides_processes() -> bool {
    static HIDES: OnceLock<bool> = OnceLock::new();
    *HIDES.get_or_init(|| {
        let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return true;
        };
        mounts
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some("/proc"))
            .any(|l| {
                l.split([' ', ','])
                    .filter_map(|o| o.strip_prefix("hidepid="))
                    .any(|v| !matches!(v, "0" | "off"))
            })
    })
}

/// The state and start time (clock ticks after boot) of process `pid`, from `/proc/PID/stat`:
/// the fields after the command name, which is in parentheses and may hold anything.
fn proc_stat(pid: &str) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Field 3 is the state; field 22 the start time (fields 1 and 2 are the PID and name).
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> &'static Claimer {
        Claimer::this_process().expect("a Linux /proc")
    }

    #[test]
    fn an_identity_reads_back_as_written() {
        let s = me().to_string();
        assert_eq!(Claimer::parse(&s).as_ref(), Some(me()));
        assert_eq!(me().liveness(me()), Liveness::Me);
        assert_eq!(Claimer::parse("no identity"), None);
    }

    #[test]
    fn a_running_process_of_this_host_is_running_and_an_ended_one_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = proc_stat(&pid.to_string()).unwrap().1;
        let other = Claimer {
            pid,
            start,
            ..me().clone()
        };
        assert_eq!(other.liveness(me()), Liveness::Running);
        // The same PID with another start time: the PID was reused.
        let reused = Claimer {
            start: start + 1,
            ..other.clone()
        };
        assert_eq!(reused.liveness(me()), Liveness::Gone);
        child.kill().unwrap();
        // Killed but not yet reaped: a zombie is gone too.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(other.liveness(me()), Liveness::Gone);
        child.wait().unwrap();
        assert_eq!(other.liveness(me()), Liveness::Gone);
    }

    #[test]
    fn another_host_boot_or_namespace_cannot_be_judged() {
        let gone = Claimer {
            pid: u32::MAX,
            ..me().clone()
        };
        assert_eq!(gone.liveness(me()), Liveness::Gone);
        for other in [
            Claimer {
                host: "elsewhere".into(),
                ..gone.clone()
            },
            Claimer {
                boot: "another-boot".into(),
                ..gone.clone()
            },
            Claimer {
                pid_ns: "1".into(),
                ..gone.clone()
            },
        ] {
            assert_eq!(other.liveness(me()), Liveness::Unknown, "{other}");
        }
    }
}
