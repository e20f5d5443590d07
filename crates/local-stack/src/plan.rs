//! Which CPUs each local "instance" (runner container) gets.

use anyhow::bail;

/// A runner container of the local stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerPlan {
    /// The local instance type it serves.
    pub instance_type: String,
    /// Its CPUs, as a cpuset list; disjoint from every other runner's.
    pub cpuset: String,
    /// Settings of this runner beyond the stack's (tests: a broken host, fast retries).
    pub env: Vec<(String, String)>,
}

impl RunnerPlan {
    /// A runner of `instance_type` on CPUs `cpuset`, with the stack's settings.
    pub fn new(instance_type: &str, cpuset: &str) -> Self {
        Self {
            instance_type: instance_type.to_owned(),
            cpuset: cpuset.to_owned(),
            env: Vec::new(),
        }
    }

    /// The same runner with one more setting.
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Gives each local instance type its own CPUs. A label ending in `-<N>cpu` (e.g.
/// `local-2cpu`) asks for N CPUs; any other label gets one. The runner inside runs one
/// slot per CPU.
pub fn plan_runners(instance_types: &[String], cpus: &[u32]) -> anyhow::Result<Vec<RunnerPlan>> {
    let wanted: Vec<usize> = instance_types
        .iter()
        .map(|label| cpus_wanted(label))
        .collect();
    let total: usize = wanted.iter().sum();
    if total > cpus.len() {
        bail!(
            "the local instance types ask for {total} CPUs ({}) but this machine has {} ({cpus:?}); use fewer or smaller local instance types",
            instance_types
                .iter()
                .zip(&wanted)
                .map(|(label, n)| format!("{label}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            cpus.len()
        );
    }
    let mut next = 0;
    Ok(instance_types
        .iter()
        .zip(wanted)
        .map(|(label, count)| {
            let mine = &cpus[next..next + count];
            next += count;
            RunnerPlan::new(
                label,
                &mine
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })
        .collect())
}

fn cpus_wanted(label: &str) -> usize {
    label
        .rsplit_once('-')
        .and_then(|(_, suffix)| suffix.strip_suffix("cpu"))
        .and_then(|count| count.parse().ok())
        .filter(|&count| count > 0)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|label| (*label).to_owned()).collect()
    }

    #[test]
    fn instance_types_get_disjoint_cpus() {
        let plan = plan_runners(&labels(&["local-1cpu", "local-b"]), &[0, 1]).unwrap();
        assert_eq!(plan[0], RunnerPlan::new("local-1cpu", "0"));
        assert_eq!(plan[1], RunnerPlan::new("local-b", "1"));
        let plan = plan_runners(&labels(&["local-2cpu"]), &[0, 1, 2]).unwrap();
        assert_eq!(plan[0].cpuset, "0,1");
    }

    #[test]
    fn asking_for_more_cpus_than_there_are_is_an_error() {
        let err = plan_runners(&labels(&["local-2cpu", "x"]), &[0, 1])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ask for 3 CPUs (local-2cpu: 2, x: 1) but this machine has 2"),
            "{err}"
        );
    }
}
