//! Parsing `zfs get -H -p` output and checking dataset names: pure
//! functions, tested on captured output.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line {line}: expected {expected} tab-separated fields, found {found}")]
    Fields {
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("property {property} of {dataset}: {value:?} is not a number of bytes")]
    NotBytes {
        dataset: String,
        property: String,
        value: String,
    },
}

/// One row of `zfs get -H -p -o name,property,value,source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyRow {
    pub name: String,
    pub property: String,
    pub value: String,
    /// `local`, `default`, `inherited from X`, `-`, ...
    pub source: String,
}

/// Parses `zfs get -H -p -o name,property,value,source` output. Values may
/// contain spaces (but not tabs: `-H` separates fields with one tab).
pub fn parse_get(output: &str) -> Result<Vec<PropertyRow>, ParseError> {
    let mut rows = Vec::new();
    for (i, line) in output.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 4 {
            return Err(ParseError::Fields {
                line: i + 1,
                expected: 4,
                found: fields.len(),
            });
        }
        rows.push(PropertyRow {
            name: fields[0].to_string(),
            property: fields[1].to_string(),
            value: fields[2].to_string(),
            source: fields[3].to_string(),
        });
    }
    Ok(rows)
}

/// The properties of one dataset, as read by [`ZfsCli::get`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatasetProperties {
    pub name: String,
    pub(super) values: BTreeMap<String, PropertyRow>,
}

impl DatasetProperties {
    /// Groups parsed rows by dataset, keeping input order of datasets.
    pub fn from_rows(rows: Vec<PropertyRow>) -> Vec<DatasetProperties> {
        let mut out: Vec<DatasetProperties> = Vec::new();
        for row in rows {
            match out.iter_mut().find(|d| d.name == row.name) {
                Some(d) => {
                    d.values.insert(row.property.clone(), row);
                }
                None => {
                    let mut d = DatasetProperties {
                        name: row.name.clone(),
                        values: BTreeMap::new(),
                    };
                    d.values.insert(row.property.clone(), row);
                    out.push(d);
                }
            }
        }
        out
    }

    pub fn value(&self, property: &str) -> Option<&str> {
        self.values.get(property).map(|r| r.value.as_str())
    }

    pub fn source(&self, property: &str) -> Option<&str> {
        self.values.get(property).map(|r| r.source.as_str())
    }

    /// A size property in bytes; `None` when unset. With `-p`, "none" quotas
    /// print as `0` (and some versions print `none` or `-`).
    pub fn bytes(&self, property: &str) -> Result<Option<u64>, ParseError> {
        match self.value(property) {
            None | Some("-") | Some("none") | Some("0") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ParseError::NotBytes {
                dataset: self.name.clone(),
                property: property.to_string(),
                value: v.to_string(),
            }),
        }
    }
}

/// Validates a dataset name well enough that it cannot be taken for an
/// option or a snapshot, before it reaches argv.
pub fn check_dataset_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("must be 1 to 255 bytes");
    }
    if name.starts_with('-') || name.starts_with('/') || name.ends_with('/') {
        return Err("must not start with '-' or '/' or end with '/'");
    }
    if name.contains("//") {
        return Err("must not contain empty components");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c))
    {
        return Err("may only contain letters, digits and _ - . : /");
    }
    Ok(())
}
