//! Lists whose items may be written short (`- 10.0.0.1/24`, `- chk_nginx`)
//! or in full (`- { address: 10.0.0.1/24, dev: eth0 }`), like keepalived's
//! one-line forms. Used with `deserialize_with`/`serialize_with` on the list
//! fields, so the item types keep a plain derived (map) form.

use std::{fmt, marker::PhantomData, str::FromStr};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, value::MapAccessDeserializer},
    ser::SerializeSeq,
};

/// An item with a one-scalar short form.
pub(crate) trait Shorthand: Sized + FromStr<Err: fmt::Display> {
    /// What the short form is, for error messages ("an address", "a script name").
    const SHORT: &'static str;
    /// The short form, when the item has nothing beyond it.
    fn short(&self) -> Option<String>;
}

/// One item: a scalar parsed with `FromStr`, or a mapping for the derived form.
struct Item<T>(T);

impl<'de, T: Shorthand + Deserialize<'de>> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<T>(PhantomData<T>);

        impl<'de, T: Shorthand + Deserialize<'de>> de::Visitor<'de> for Visit<T> {
            type Value = Item<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} or a mapping", T::SHORT)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map(Item).map_err(E::custom)
            }

            // A bare number (`- 1111`) is a name, not a number, in a short form.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Item)
            }
        }

        deserializer.deserialize_any(Visit(PhantomData))
    }
}

pub(crate) fn seq<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Shorthand + Deserialize<'de>,
{
    let items = Vec::<Item<T>>::deserialize(deserializer)?;
    Ok(items.into_iter().map(|Item(t)| t).collect())
}

pub(crate) fn ser_seq<S, T>(items: &[T], serializer: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Shorthand + Serialize,
{
    let mut seq = serializer.serialize_seq(Some(items.len()))?;
    for item in items {
        match item.short() {
            Some(short) => seq.serialize_element(&short)?,
            None => seq.serialize_element(item)?,
        }
    }
    seq.end()
}
