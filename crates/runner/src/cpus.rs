//! CPUs: which the runner may use, how slots are pinned, and what the host tells about
//! them (model, SMT siblings, steal time).

use std::collections::BTreeSet;

use anyhow::{Context, bail};

use crate::settings::SlotMode;

/// Parses a cpuset list such as `0-3,6,8-9` into sorted CPU numbers.
pub fn parse_cpu_list(list: &str) -> anyhow::Result<Vec<u32>> {
    let mut cpus = BTreeSet::new();
    for part in list.trim().split(',').filter(|part| !part.is_empty()) {
        let part = part.trim();
        match part.split_once('-') {
            Some((first, last)) => {
                let first: u32 = first
                    .parse()
                    .with_context(|| format!("bad CPU number in {part:?}"))?;
                let last: u32 = last
                    .parse()
                    .with_context(|| format!("bad CPU number in {part:?}"))?;
                if first > last {
                    bail!("bad CPU range {part:?}: {first} is after {last}");
                }
                cpus.extend(first..=last);
            }
            None => {
                cpus.insert(
                    part.parse()
                        .with_context(|| format!("bad CPU number {part:?}"))?,
                );
            }
        }
    }
    if cpus.is_empty() {
        bail!("the CPU list {list:?} names no CPU");
    }
    Ok(cpus.into_iter().collect())
}

/// The CPUs this process may run on (its affinity, as the kernel reports it).
pub fn allowed_cpus() -> anyhow::Result<Vec<u32>> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("failed to read /proc/self/status")?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .context("/proc/self/status has no Cpus_allowed_list")?;
    parse_cpu_list(list)
}

/// The hyperthreads sharing a physical core with `cpu` (including itself).
pub fn smt_siblings(cpu: u32) -> Vec<u32> {
    std::fs::read_to_string(format!(
        "/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
    ))
    .ok()
    .and_then(|list| parse_cpu_list(&list).ok())
    .unwrap_or_else(|| vec![cpu])
}

/// The CPU each slot is pinned to: every CPU, or the first hyperthread of each core.
pub fn slot_cpus(
    cpus: &[u32],
    mode: SlotMode,
    slots: Option<usize>,
    siblings: impl Fn(u32) -> Vec<u32>,
) -> anyhow::Result<Vec<u32>> {
    let candidates: Vec<u32> = match mode {
        SlotMode::Vcpu => cpus.to_vec(),
        SlotMode::Core => {
            let mut seen = BTreeSet::new();
            let mut firsts = Vec::new();
            for &cpu in cpus {
                let core = siblings(cpu);
                if core.iter().all(|sibling| !seen.contains(sibling)) {
                    firsts.push(cpu);
                }
                seen.extend(core);
            }
            firsts
        }
    };
    match slots {
        None => Ok(candidates),
        Some(0) => bail!("SLOTS must be at least 1"),
        Some(n) if n > candidates.len() => bail!(
            "SLOTS={n} but only {} CPUs are available for slots ({candidates:?}); each slot needs a CPU of its own",
            candidates.len()
        ),
        Some(n) => Ok(candidates[..n].to_vec()),
    }
}

/// The CPU model as the host names it (x86 `model name`; on Arm, the core's name).
pub fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpu_model_from(&cpuinfo)
}

fn cpu_model_from(cpuinfo: &str) -> Option<String> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    };
    if let Some(model) = field("model name") {
        return Some(model);
    }
    // Arm hosts list implementer and part numbers only; name the cores cloud hosts use.
    let implementer = field("CPU implementer")?;
    let part = field("CPU part")?;
    let name = match (implementer.as_str(), part.as_str()) {
        ("0x41", "0xd0c") => "ARM Neoverse-N1",
        ("0x41", "0xd40") => "ARM Neoverse-V1",
        ("0x41", "0xd49") => "ARM Neoverse-N2",
        ("0x41", "0xd4f") => "ARM Neoverse-V2",
        ("0x41", "0xd8e") => "ARM Neoverse-N3",
        ("0x41", "0xd84") => "ARM Neoverse-V3",
        ("0xc0", "0xac3") => "Ampere-1",
        ("0xc0", "0xac4") => "Ampere-1a",
        _ => return Some(format!("Arm implementer {implementer} part {part}")),
    };
    Some(name.to_owned())
}

/// Busy and steal ticks of one CPU from `/proc/stat`, to compute steal over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    /// All ticks (user through steal).
    pub total: u64,
    /// Ticks stolen by the hypervisor.
    pub steal: u64,
}

/// The current ticks of `cpu`, if the kernel reports them.
pub fn cpu_ticks(cpu: u32) -> Option<CpuTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    cpu_ticks_from(&stat, cpu)
}

fn cpu_ticks_from(stat: &str, cpu: u32) -> Option<CpuTicks> {
    let label = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|line| line.split_whitespace().next() == Some(label.as_str()))?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
    // already counted in user, so it is left out of the total.
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    if values.len() < 8 {
        return None;
    }
    Some(CpuTicks {
        total: values.iter().sum(),
        steal: values[7],
    })
}

/// Steal as a percentage of the CPU's time between two readings.
pub fn steal_pct(before: CpuTicks, after: CpuTicks) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let steal = after.steal.checked_sub(before.steal)?;
    (total > 0).then(|| (steal as f64 * 100.0 / total as f64 * 100.0).round() / 100.0)
}

/// The kernel release of the host.
pub fn kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|release| release.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_like_the_kernel_writes_them() {
        assert_eq!(
            parse_cpu_list("0-3,6,8-9\n").unwrap(),
            [0, 1, 2, 3, 6, 8, 9]
        );
        assert_eq!(parse_cpu_list("1").unwrap(), [1]);
        assert!(parse_cpu_list("").is_err());
        assert!(
            parse_cpu_list("3-1")
                .unwrap_err()
                .to_string()
                .contains("3 is after 1")
        );
        assert!(parse_cpu_list("a").is_err());
    }

    #[test]
    fn core_mode_keeps_one_hyperthread_per_core() {
        // Two cores, hyperthreads 0/2 and 1/3, as on many x86 hosts.
        let siblings = |cpu| match cpu {
            0 | 2 => vec![0, 2],
            _ => vec![1, 3],
        };
        assert_eq!(
            slot_cpus(&[0, 1, 2, 3], SlotMode::Vcpu, None, siblings).unwrap(),
            [0, 1, 2, 3]
        );
        assert_eq!(
            slot_cpus(&[0, 1, 2, 3], SlotMode::Core, None, siblings).unwrap(),
            [0, 1]
        );
        assert_eq!(
            slot_cpus(&[0, 1, 2, 3], SlotMode::Vcpu, Some(2), siblings).unwrap(),
            [0, 1]
        );
        let too_many = slot_cpus(&[0, 1], SlotMode::Vcpu, Some(3), siblings).unwrap_err();
        assert!(too_many.to_string().contains("SLOTS=3"), "{too_many}");
        assert!(slot_cpus(&[0], SlotMode::Vcpu, Some(0), siblings).is_err());
    }

    #[test]
    fn cpu_models_are_named_on_x86_and_arm() {
        let x86 = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8488C\n";
        assert_eq!(
            cpu_model_from(x86).unwrap(),
            "Intel(R) Xeon(R) Platinum 8488C"
        );
        let graviton3 = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd40\n";
        assert_eq!(cpu_model_from(graviton3).unwrap(), "ARM Neoverse-V1");
    }

    #[test]
    fn steal_is_a_share_of_the_interval() {
        let stat =
            "cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 100 0 100 700 0 0 0 100 0 0\ncpu1 1 1 1 1 1 1 1 1\n";
        let before = cpu_ticks_from(stat, 0).unwrap();
        assert_eq!(
            before,
            CpuTicks {
                total: 1000,
                steal: 100
            }
        );
        let after = CpuTicks {
            total: 2000,
            steal: 150,
        };
        assert_eq!(steal_pct(before, after), Some(5.0));
        assert_eq!(steal_pct(before, before), None);
        assert!(cpu_ticks_from(stat, 7).is_none());
    }
}
