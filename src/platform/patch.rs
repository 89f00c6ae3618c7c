//! One encoding for a nullable field of an update: left alone, set, or cleared — GraphQL's
//! undefined, a value, and `null` (and, in REST bodies, an absent key, a value and `null`).

/// A field left alone, set, or cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Set(T),
    Clear,
}

impl<T> Patch<T> {
    /// Whether the update touches the field.
    pub fn is_change(&self) -> bool {
        !matches!(self, Patch::Keep)
    }

    /// Checks or converts a value being set; `Keep` and `Clear` pass through.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Patch<U>, E> {
        Ok(match self {
            Patch::Keep => Patch::Keep,
            Patch::Set(v) => Patch::Set(f(v)?),
            Patch::Clear => Patch::Clear,
        })
    }

    /// The field's new value, given its current one.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current,
            Patch::Set(v) => Some(v),
            Patch::Clear => None,
        }
    }

    /// The value a create takes from it (nothing to keep: `Keep` and `Clear` both mean none).
    pub fn into_value(self) -> Option<T> {
        match self {
            Patch::Set(v) => Some(v),
            Patch::Keep | Patch::Clear => None,
        }
    }
}

impl<T> From<Option<T>> for Patch<T> {
    /// A plain optional value: given or left alone.
    fn from(v: Option<T>) -> Self {
        v.map_or(Patch::Keep, Patch::Set)
    }
}
