//! Hourly on-demand prices: CSV with the header `provider,instance_type,region,usd_per_hour`,
//! optionally followed by `currency,source,as_of`. Lines starting with `#` are comments.
//!
//! ```text
//! provider,instance_type,region,usd_per_hour,currency,source,as_of
//! aws,c7g.medium,us-east-1,0.0363,USD,AWS Price List API,2026-11-30
//! azure,Standard_D2pls_v6,eastus,0.0640,USD,Azure Retail Prices API,2026-11-30
//! ```
//!
//! Three tables can price a type, in this order ([`PriceBook`]): the user's `--prices` file,
//! the run's `results/<run-id>/prices.csv` that the master script records at deploy time, and
//! the table shipped with the builder (`crates/site/data/prices.csv`). Within a table, a type
//! is priced from the row of its provider, name and the region its tasks ran in; without a row
//! for that region, the alphabetically first region's row is used. Results without meta.json
//! (provider unknown) match on the instance type alone.

use std::collections::BTreeMap;

/// The short header line (no currency, source or date).
pub const HEADER: &str = "provider,instance_type,region,usd_per_hour";

/// The full header line, as the master script records prices and the shipped table holds them.
pub const FULL_HEADER: &str = "provider,instance_type,region,usd_per_hour,currency,source,as_of";

/// The name of the prices file the master script records in `results/<run-id>/`.
pub const RECORDED_FILE: &str = "prices.csv";

/// The table shipped with the builder.
const SHIPPED_CSV: &str = include_str!("../data/prices.csv");

/// Which table a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PriceOrigin {
    /// The user's `--prices` file.
    Given,
    /// `results/<run-id>/prices.csv`, recorded at deploy time.
    Recorded,
    /// The table shipped with the site builder.
    Shipped,
}

impl PriceOrigin {
    /// How the pages name the table.
    pub fn describe(self) -> &'static str {
        match self {
            PriceOrigin::Given => "the --prices file",
            PriceOrigin::Recorded => "the prices the master script recorded at deploy time",
            PriceOrigin::Shipped => "the price table shipped with the site builder",
        }
    }

    /// A short label for CSV and JSON.
    pub fn label(self) -> &'static str {
        match self {
            PriceOrigin::Given => "given",
            PriceOrigin::Recorded => "recorded",
            PriceOrigin::Shipped => "shipped",
        }
    }
}

/// An instance type's hourly price and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// On-demand USD per hour.
    pub usd_per_hour: f64,
    /// The region of the row used.
    pub region: String,
    /// The row's source, e.g. `AWS Price List API`.
    pub source: String,
    /// The date the price was read (`YYYY-MM-DD`), when the table says.
    pub as_of: Option<String>,
    /// The table it came from.
    pub origin: PriceOrigin,
}

impl Price {
    /// "0.0363 USD/hour (us-east-1; AWS Price List API, as of 2026-11-30; recorded ...)".
    pub fn provenance(&self) -> String {
        let dated = self
            .as_of
            .as_ref()
            .map_or_else(String::new, |d| format!(", as of {d}"));
        format!(
            "{:.4} USD/hour ({}; {}{dated}; {})",
            self.usd_per_hour,
            self.region,
            self.source,
            self.origin.describe()
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    usd_per_hour: f64,
    source: String,
    as_of: Option<String>,
}

/// One prices table, keyed by (provider, instance type, region).
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    origin: PriceOrigin,
    rows: BTreeMap<(String, String, String), Row>,
}

impl Prices {
    /// Parses the CSV text of a table from `origin`; errors name the line.
    pub fn parse(text: &str, origin: PriceOrigin) -> anyhow::Result<Self> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let full = match lines.next() {
            Some((_, header)) if header.trim().replace(' ', "") == HEADER => false,
            Some((_, header)) if header.trim().replace(' ', "") == FULL_HEADER => true,
            Some((i, header)) => anyhow::bail!(
                "line {}: expected the header `{HEADER}` (optionally followed by `,currency,source,as_of`), found `{}`",
                i + 1,
                header.trim()
            ),
            None => anyhow::bail!(
                "empty prices file: expected the header `{HEADER}` and one row per instance type"
            ),
        };
        let (expected, header) = if full { (7, FULL_HEADER) } else { (4, HEADER) };
        let mut rows = BTreeMap::new();
        for (i, line) in lines {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != expected {
                anyhow::bail!(
                    "line {}: expected {expected} fields ({header}), found {}",
                    i + 1,
                    fields.len()
                );
            }
            let row =
                parse_row(&fields, origin).map_err(|e| anyhow::anyhow!("line {}: {e}", i + 1))?;
            rows.insert(
                (
                    fields[0].to_owned(),
                    fields[1].to_owned(),
                    fields[2].to_owned(),
                ),
                row,
            );
        }
        Ok(Self { origin, rows })
    }

    /// The table shipped with the builder.
    pub fn shipped() -> Self {
        Self::parse(SHIPPED_CSV, PriceOrigin::Shipped).expect("the shipped price table parses")
    }

    /// The price of `instance_type` at `provider`, preferring one of `regions`.
    pub fn lookup(&self, provider: &str, instance_type: &str, regions: &[String]) -> Option<Price> {
        let candidates: Vec<(&String, &Row)> = self
            .rows
            .iter()
            .filter(|((p, t, _), _)| t == instance_type && (provider == "unknown" || p == provider))
            .map(|((_, _, r), row)| (r, row))
            .collect();
        candidates
            .iter()
            .find(|(r, _)| regions.contains(r))
            .or(candidates.first())
            .map(|(region, row)| Price {
                usd_per_hour: row.usd_per_hour,
                region: (*region).clone(),
                source: row.source.clone(),
                as_of: row.as_of.clone(),
                origin: self.origin,
            })
    }
}

fn parse_row(fields: &[&str], origin: PriceOrigin) -> anyhow::Result<Row> {
    let price = fields[3];
    let usd_per_hour: f64 = price
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite() && *p > 0.0)
        .ok_or_else(|| anyhow::anyhow!("usd_per_hour {price:?} is not a positive number"))?;
    let Some(&[currency, source, as_of]) = fields.get(4..7) else {
        return Ok(Row {
            usd_per_hour,
            source: origin.describe().to_owned(),
            as_of: None,
        });
    };
    anyhow::ensure!(
        currency == "USD",
        "currency {currency:?}: the column is usd_per_hour, so prices must be in USD"
    );
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let as_of = if as_of.is_empty() {
        None
    } else {
        time::Date::parse(as_of, format)
            .map_err(|_| anyhow::anyhow!("as_of {as_of:?} is not a date (expected YYYY-MM-DD)"))?;
        Some(as_of.to_owned())
    };
    Ok(Row {
        usd_per_hour,
        source: if source.is_empty() {
            origin.describe().to_owned()
        } else {
            source.to_owned()
        },
        as_of,
    })
}

/// The tables that may price a run's types, in precedence order.
#[derive(Debug, Clone)]
pub struct PriceBook<'a> {
    tables: Vec<&'a Prices>,
}

impl<'a> PriceBook<'a> {
    /// The given file, then the run's recorded prices, then the shipped table.
    pub fn new(
        given: Option<&'a Prices>,
        recorded: Option<&'a Prices>,
        shipped: &'a Prices,
    ) -> Self {
        Self {
            tables: given.into_iter().chain(recorded).chain([shipped]).collect(),
        }
    }

    /// The price from the first table that lists the type.
    pub fn lookup(&self, provider: &str, instance_type: &str, regions: &[String]) -> Option<Price> {
        self.tables
            .iter()
            .find_map(|t| t.lookup(provider, instance_type, regions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(price: Option<Price>) -> Option<f64> {
        price.map(|p| p.usd_per_hour)
    }

    #[test]
    fn parses_and_looks_up() {
        let prices = Prices::parse(
            &format!("{HEADER}\naws,c7g.medium,us-west-2,0.04\naws,c7g.medium,us-east-1,0.0363\n"),
            PriceOrigin::Given,
        )
        .unwrap();
        assert_eq!(
            usd(prices.lookup("aws", "c7g.medium", &["us-east-1".to_owned()])),
            Some(0.0363)
        );
        assert_eq!(usd(prices.lookup("aws", "c7g.medium", &[])), Some(0.0363));
        assert_eq!(prices.lookup("azure", "c7g.medium", &[]), None);
        assert_eq!(
            usd(prices.lookup("unknown", "c7g.medium", &["us-west-2".to_owned()])),
            Some(0.04)
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = Prices::parse(
            &format!("{HEADER}\naws,c7g.medium,0.04\n"),
            PriceOrigin::Given,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: expected 4 fields (provider,instance_type,region,usd_per_hour), found 3"
        );
        let err = Prices::parse("a,b\n", PriceOrigin::Given).unwrap_err();
        assert!(err.to_string().starts_with("line 1: expected the header"));
        let err =
            Prices::parse(&format!("{HEADER}\naws,x,r,free\n"), PriceOrigin::Given).unwrap_err();
        assert!(err.to_string().contains("not a positive number"), "{err}");
        let err = Prices::parse(
            &format!("{FULL_HEADER}\naws,x,r,0.1,EUR,api,2026-01-01\n"),
            PriceOrigin::Recorded,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: currency \"EUR\": the column is usd_per_hour, so prices must be in USD"
        );
        let err = Prices::parse(
            &format!("# a note\n{FULL_HEADER}\naws,x,r,0.1,USD,api,yesterday\n"),
            PriceOrigin::Recorded,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: as_of \"yesterday\" is not a date (expected YYYY-MM-DD)"
        );
    }

    #[test]
    fn the_given_file_wins_then_the_recorded_then_the_shipped_table() {
        let given = Prices::parse(
            &format!("{HEADER}\naws,c7g.medium,us-east-1,0.05\n"),
            PriceOrigin::Given,
        )
        .unwrap();
        let recorded = Prices::parse(
            &format!(
                "{FULL_HEADER}\naws,c7g.medium,us-east-1,0.04,USD,AWS Price List API,2026-11-30\naws,c8g.medium,us-east-1,0.045,USD,AWS Price List API,2026-11-30\n"
            ),
            PriceOrigin::Recorded,
        )
        .unwrap();
        let shipped = Prices::shipped();
        let book = PriceBook::new(Some(&given), Some(&recorded), &shipped);
        let regions = ["us-east-1".to_owned()];
        let c7g = book.lookup("aws", "c7g.medium", &regions).unwrap();
        assert_eq!((c7g.usd_per_hour, c7g.origin), (0.05, PriceOrigin::Given));
        assert_eq!(c7g.source, "the --prices file");
        let c8g = book.lookup("aws", "c8g.medium", &regions).unwrap();
        assert_eq!(
            c8g.provenance(),
            "0.0450 USD/hour (us-east-1; AWS Price List API, as of 2026-11-30; the prices the master script recorded at deploy time)"
        );
        let c6g = book.lookup("aws", "c6g.medium", &regions).unwrap();
        assert_eq!(c6g.origin, PriceOrigin::Shipped);
        assert_eq!(c6g.as_of.as_deref(), Some("2025-06-01"));
        assert_eq!(book.lookup("aws", "synth000.large", &regions), None);
    }
}
