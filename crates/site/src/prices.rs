//! The optional prices file: CSV with the header `provider,instance_type,region,usd_per_hour`.
//!
//! ```text
//! provider,instance_type,region,usd_per_hour
//! aws,c7g.medium,us-east-1,0.0363
//! azure,Standard_D2pls_v6,eastus,0.0780
//! ```
//!
//! A type is priced from the row of its provider, name and the region its tasks ran in; without
//! a row for that region, the alphabetically first region's row is used. Results without
//! meta.json (provider unknown) match on the instance type alone.

use std::collections::BTreeMap;

/// The expected header line.
pub const HEADER: &str = "provider,instance_type,region,usd_per_hour";

/// Hourly on-demand prices, keyed by (provider, instance type, region).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    rows: BTreeMap<(String, String, String), f64>,
}

impl Prices {
    /// Parses the CSV text; errors name the line.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        match lines.next() {
            Some((_, header)) if header.trim().replace(' ', "") == HEADER => {}
            Some((_, header)) => anyhow::bail!(
                "line 1: expected the header `{HEADER}`, found `{}`",
                header.trim()
            ),
            None => anyhow::bail!(
                "empty prices file: expected the header `{HEADER}` and one row per instance type"
            ),
        }
        let mut rows = BTreeMap::new();
        for (i, line) in lines {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [provider, instance_type, region, price] = fields[..] else {
                anyhow::bail!(
                    "line {}: expected 4 fields ({HEADER}), found {}",
                    i + 1,
                    fields.len()
                );
            };
            let price: f64 = price
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p > 0.0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "line {}: usd_per_hour {price:?} is not a positive number",
                        i + 1
                    )
                })?;
            rows.insert(
                (
                    provider.to_owned(),
                    instance_type.to_owned(),
                    region.to_owned(),
                ),
                price,
            );
        }
        Ok(Self { rows })
    }

    /// The price of `instance_type` at `provider`, preferring one of `regions`.
    pub fn lookup(&self, provider: &str, instance_type: &str, regions: &[String]) -> Option<f64> {
        let candidates: Vec<(&String, f64)> = self
            .rows
            .iter()
            .filter(|((p, t, _), _)| t == instance_type && (provider == "unknown" || p == provider))
            .map(|((_, _, r), price)| (r, *price))
            .collect();
        candidates
            .iter()
            .find(|(r, _)| regions.contains(r))
            .or(candidates.first())
            .map(|(_, p)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_looks_up() {
        let prices = Prices::parse(&format!(
            "{HEADER}\naws,c7g.medium,us-west-2,0.04\naws,c7g.medium,us-east-1,0.0363\n"
        ))
        .unwrap();
        assert_eq!(
            prices.lookup("aws", "c7g.medium", &["us-east-1".to_owned()]),
            Some(0.0363)
        );
        assert_eq!(prices.lookup("aws", "c7g.medium", &[]), Some(0.0363));
        assert_eq!(prices.lookup("azure", "c7g.medium", &[]), None);
        assert_eq!(
            prices.lookup("unknown", "c7g.medium", &["us-west-2".to_owned()]),
            Some(0.04)
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = Prices::parse(&format!("{HEADER}\naws,c7g.medium,0.04\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: expected 4 fields (provider,instance_type,region,usd_per_hour), found 3"
        );
        let err = Prices::parse("a,b\n").unwrap_err();
        assert!(err.to_string().starts_with("line 1: expected the header"));
        let err = Prices::parse(&format!("{HEADER}\naws,x,r,free\n")).unwrap_err();
        assert!(err.to_string().contains("not a positive number"), "{err}");
    }
}
