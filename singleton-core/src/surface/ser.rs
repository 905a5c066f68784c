//! Serde impls for the core's plain data types, written with two small macros instead of
//! `#[derive(Serialize, Deserialize)]`: the derive pulls `serde_derive` (and the `syn` build it
//! needs first) onto the critical path of every user's clean build, for five structs of plain
//! fields. What the derive would give is kept: fields in declaration order, renames where a key
//! is a Rust keyword, unknown keys ignored and a missing or repeated key refused on the way in.

/// `impl Serialize` for a struct of named fields: `serialize_fields!(Type { "key" => field, ... })`.
macro_rules! serialize_fields {
    ($ty:ident { $($key:literal => $field:ident),* $(,)? }) => {
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeStruct as _;
                let mut out = serializer.serialize_struct(stringify!($ty), [$($key),*].len())?;
                $(out.serialize_field($key, &self.$field)?;)*
                out.end()
            }
        }
    };
}

/// `impl Deserialize` for a struct of named fields, each key the field's name:
/// `deserialize_fields!(Type, "what it is" { field, ... })`.
macro_rules! deserialize_fields {
    ($ty:ident, $expecting:literal { $($field:ident),* $(,)? }) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                struct Fields;
                impl<'de> ::serde::de::Visitor<'de> for Fields {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(self, mut map: A) -> ::std::result::Result<$ty, A::Error> {
                        use ::serde::de::Error as _;
                        $(let mut $field = None;)*
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $(stringify!($field) => {
                                    if $field.is_some() {
                                        return Err(A::Error::duplicate_field(stringify!($field)));
                                    }
                                    $field = Some(map.next_value()?);
                                })*
                                _ => {
                                    map.next_value::<::serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok($ty {
                            $($field: $field.ok_or_else(|| A::Error::missing_field(stringify!($field)))?,)*
                        })
                    }
                }
                deserializer.deserialize_struct(stringify!($ty), &[$(stringify!($field)),*], Fields)
            }
        }
    };
}

pub(crate) use {deserialize_fields, serialize_fields};
