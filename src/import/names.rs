//! Kubernetes names for imported AWS objects: derived deterministically from the AWS name
//! (lower case, `[a-z0-9-]`, at most 63 characters), and made unique per kind by a suffix
//! taken from the AWS id when two AWS objects map to the same name. Pure.

use std::collections::BTreeMap;

/// Longest name given (a DNS label, which every kind accepts).
const MAX: usize = 63;

/// The Kubernetes name derived from `aws_name`: lower case, every run of other characters
/// than `[a-z0-9]` one `-`, no `-` at either end, at most 63 characters; `fallback` (already
/// a valid name) when nothing is left.
pub fn derive(aws_name: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in aws_name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(MAX);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        fallback.to_string()
    } else {
        out
    }
}

/// The tail of an AWS id or ARN usable in a name: its last `[a-z0-9]` characters (at most 8).
pub fn id_suffix(aws_id: &str) -> String {
    let tail = aws_id.rsplit(['/', ':']).next().unwrap_or(aws_id);
    let clean: String = tail
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .collect();
    clean[clean.len().saturating_sub(8)..].to_string()
}

/// A name given to one AWS object, and whether it collided with another's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Given {
    pub name: String,
    /// The name derived from the AWS name, when it was taken and a suffix was added.
    pub collided_with: Option<String>,
}

/// Names for objects of one kind, `(aws_id, aws_name)`, keyed by AWS id. The objects are
/// taken in AWS-id order, so the same organization always gets the same names: the first
/// keeps the derived name, the others get `-<id suffix>`.
pub fn assign(objects: &[(String, String)], fallback_prefix: &str) -> BTreeMap<String, Given> {
    let mut sorted: Vec<&(String, String)> = objects.iter().collect();
    sorted.sort();
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (id, aws_name) in sorted {
        let suffix = id_suffix(id);
        let base = derive(aws_name, &format!("{fallback_prefix}-{suffix}"));
        let given = if taken.contains_key(&base) {
            let mut head = base.clone();
            head.truncate(MAX - suffix.len() - 1);
            let name = format!("{}-{suffix}", head.trim_end_matches('-'));
            Given {
                name,
                collided_with: Some(base),
            }
        } else {
            Given {
                name: base,
                collided_with: None,
            }
        };
        taken.insert(given.name.clone(), id.clone());
        out.insert(id.clone(), given);
    }
    out
}

/// [`assign`] for `objects`, each giving its `(aws_id, aws_name)` through `id_and_name`.
pub fn assign_by<'a, T>(
    objects: impl IntoIterator<Item = T>,
    id_and_name: impl Fn(T) -> (&'a String, &'a String),
    fallback_prefix: &str,
) -> BTreeMap<String, Given> {
    let pairs: Vec<(String, String)> = objects
        .into_iter()
        .map(|o| {
            let (id, name) = id_and_name(o);
            (id.clone(), name.clone())
        })
        .collect();
    assign(&pairs, fallback_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_deterministic() {
        assert_eq!(derive("Customers-EU", "x"), "customers-eu");
        assert_eq!(derive("  Gold Plan (2024) ", "x"), "gold-plan-2024");
        assert_eq!(derive("___", "ou-1"), "ou-1");
        assert_eq!(derive(&"a".repeat(80), "x").len(), 63);
        assert_eq!(
            id_suffix("arn:aws:billingconductor::1:pricingplan/AbC123xyz9"),
            "c123xyz9"
        );
    }

    #[test]
    fn collisions_get_a_suffix_in_id_order_and_say_so() {
        let objects = vec![
            ("222222222222".to_string(), "Acme".to_string()),
            ("111111111111".to_string(), "ACME".to_string()),
        ];
        let names = assign(&objects, "account");
        assert_eq!(names["111111111111"].name, "acme");
        assert_eq!(names["111111111111"].collided_with, None);
        assert_eq!(names["222222222222"].name, "acme-22222222");
        assert_eq!(names["222222222222"].collided_with.as_deref(), Some("acme"));
        assert_eq!(assign(&objects, "account"), names);
    }
}
