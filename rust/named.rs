//! Settings that Python and the CLI choose by name (the swap device, how reclaim reads the
//! memcg statistics): one table of names per setting, and the lookups both ways.

use crate::error::{Error, Result};

/// A setting whose values have names. The first entry of [`Named::NAMES`] is the default.
pub trait Named: Copy + PartialEq + Sized + 'static {
    /// Every value and its name, the default first.
    const NAMES: &'static [(Self, &'static str)];
    /// What the setting is called in an error ("the swap device").
    const SETTING: &'static str;

    /// This value's name.
    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(v, _)| *v == self).map_or(Self::NAMES[0].1, |(_, n)| *n)
    }

    /// The value named `name`; an unknown name is [`Error::InvalidArgument`] listing the names.
    fn from_name(name: &str) -> Result<Self> {
        Self::NAMES.iter().find(|(_, n)| *n == name).map(|(v, _)| *v).ok_or_else(|| {
            let names: Vec<String> = Self::NAMES.iter().map(|(_, n)| format!("{n:?}")).collect();
            Error::invalid(format!("{} is {}, not {name:?}", Self::SETTING, names.join(" or ")))
        })
    }
}
