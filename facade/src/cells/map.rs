//! [`CellMap`]: each cell's [`Facade`], built once and looked up by id.
//!
//! Ids are short and plain (letters, digits, `_`, `-`, `.`), so that they
//! can be written in an environment variable and quoted in an error
//! without escaping. A cell's URL is only ever shown redacted (through its
//! facade's `Debug` or the builder's errors, see `redact.rs`).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use crate::backend::SupportedConnection;
use crate::config::{split_url_list, FacadeConfig};
use crate::error::Error;
use crate::facade::Facade;

/// The longest cell id.
const MAX_ID_CHARS: usize = 64;

/// The environment variable [`CellMap::from_env`] reads.
const CELLS_VAR: &str = "DATABASE_CELLS";

/// The cells of a sharded deployment: one [`Facade`] per cell database,
/// each built once (with its own pools), looked up by id.
///
/// Pair it with [`TargetCell::target`](crate::TargetCell::target) to work
/// on one cell, and [`scatter_gather`](Self::scatter_gather) to read from
/// all of them.
///
/// ```
/// use diesel::SqliteConnection;
/// use diesel_facade::{CellMap, ErrorKind, FacadeConfig};
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let cells = CellMap::<SqliteConnection>::from_configs([
///     ("cell1", FacadeConfig { connection: "file:c1?mode=memory&cache=shared".into(), ..Default::default() }),
///     ("cell2", FacadeConfig { connection: "file:c2?mode=memory&cache=shared".into(), ..Default::default() }),
/// ])?;
/// assert_eq!(cells.ids().collect::<Vec<_>>(), ["cell1", "cell2"]);
/// assert!(cells.get("cell2")?.writer_url().starts_with("file:c2"));
/// let err = cells.get("cell3").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Config);
/// assert!(err.message().contains("`cell3`"));
/// # Ok(()) }
/// ```
pub struct CellMap<C: SupportedConnection> {
    pub(super) cells: BTreeMap<String, Facade<C>>,
}

impl<C: SupportedConnection> CellMap<C> {
    /// An empty map; add cells with [`insert`](Self::insert).
    ///
    /// ```
    /// let cells = diesel_facade::CellMap::<diesel::SqliteConnection>::new();
    /// assert!(cells.is_empty());
    /// ```
    pub fn new() -> Self {
        CellMap {
            cells: BTreeMap::new(),
        }
    }

    /// Add a cell built elsewhere (with [`Facade::builder`], say), or
    /// replace the one with this id, which is returned.
    ///
    /// An id is 1 to 64 letters, digits, `_`, `-` or `.`; anything else is
    /// an [`ErrorKind::Config`](crate::ErrorKind::Config) error.
    ///
    /// ```
    /// use diesel::SqliteConnection;
    /// use diesel_facade::{CellMap, Facade};
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let mut cells = CellMap::new();
    /// let eu = Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
    /// assert!(cells.insert("eu-west", eu)?.is_none());
    /// assert!(cells.insert("no spaces", cells.get("eu-west")?.clone()).is_err());
    /// assert_eq!(cells.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn insert(
        &mut self,
        id: impl Into<String>,
        facade: Facade<C>,
    ) -> Result<Option<Facade<C>>, Error> {
        let id = id.into();
        check_id(&id)?;
        Ok(self.cells.insert(id, facade))
    }

    /// Build every cell from its [`FacadeConfig`] (see
    /// [`Facade::from_config`]). A map of id to configuration deserializes
    /// from JSON or TOML as it is (`BTreeMap<String, FacadeConfig>`).
    ///
    /// Each build connects once to the cell's writer, so a cell that is
    /// down, misspelt or refuses the password fails the whole map, with an
    /// error of the build's kind whose message names the cell (and never
    /// its password). To start without such a cell, build the others and
    /// [`insert`](Self::insert) it once it answers. A repeated id is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use diesel_facade::{CellMap, FacadeConfig};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let configs: BTreeMap<String, FacadeConfig> = serde_json::from_str(r#"{
    ///     "cell1": {"connection": "file:m1?mode=memory&cache=shared", "max_pool_size": 4},
    ///     "cell2": {"connection": "file:m2?mode=memory&cache=shared", "max_pool_size": 4}
    /// }"#)?;
    /// let cells = CellMap::<diesel::SqliteConnection>::from_configs(&configs)?;
    /// assert_eq!(cells.len(), 2);
    ///
    /// let bad = CellMap::<diesel::SqliteConnection>::from_configs([
    ///     ("cell9", FacadeConfig { connection: ":memory:".into(), max_pool_size: Some(0), ..Default::default() }),
    /// ]);
    /// assert!(bad.unwrap_err().message().starts_with("cell `cell9`: "));
    /// # Ok(()) }
    /// ```
    pub fn from_configs<I, K, V>(configs: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Borrow<FacadeConfig>,
    {
        let mut map = CellMap::new();
        for (id, config) in configs {
            let id = id.as_ref();
            map.add_new(id, |_| Facade::from_config(config.borrow()))?;
        }
        Ok(map)
    }

    /// Build the cells named in `DATABASE_CELLS`: comma-separated
    /// `ID=URL` entries, each with default options (like
    /// [`Facade::from_env`]). A MySQL/MariaDB failover list stays one cell's
    /// URL: an entry that does not start with `ID=` continues the previous
    /// one (`c1=mysql://a/db,mysql://b/db,c2=mysql://c/db`). As with
    /// [`from_configs`](Self::from_configs), every cell connects once.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// std::env::set_var(
    ///     "DATABASE_CELLS",
    ///     "cell1=file:e1?mode=memory&cache=shared, cell2=file:e2?mode=memory&cache=shared",
    /// );
    /// let cells = diesel_facade::CellMap::<diesel::SqliteConnection>::from_env()?;
    /// assert_eq!(cells.ids().collect::<Vec<_>>(), ["cell1", "cell2"]);
    /// # Ok(()) }
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        let list = std::env::var(CELLS_VAR).map_err(|_| {
            Error::config(format!(
                "{CELLS_VAR} is not set (or not UTF-8): set it to the cells' `ID=URL` list, \
                 comma-separated"
            ))
        })?;
        let mut map = CellMap::new();
        for (id, url) in parse_cell_list(&list)? {
            map.add_new(&id, |_| Facade::builder().writer(url).build())?;
        }
        Ok(map)
    }

    /// Add the cell `id`, which must be new, built by `build`; a build error
    /// is reported with the cell's id.
    fn add_new(
        &mut self,
        id: &str,
        build: impl FnOnce(&str) -> Result<Facade<C>, Error>,
    ) -> Result<(), Error> {
        check_id(id)?;
        if self.cells.contains_key(id) {
            return Err(Error::config(format!("cell `{id}` is configured twice")));
        }
        let facade =
            build(id).map_err(|e| Error::new(e.kind(), format!("cell `{id}`: {}", e.message())))?;
        self.cells.insert(id.to_owned(), facade);
        Ok(())
    }

    /// The facade of cell `id`; an unknown id is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error that names it
    /// and the cells there are.
    ///
    /// ```
    /// use diesel_facade::{CellMap, Facade};
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let mut cells = CellMap::new();
    /// cells.insert("cell1", Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?)?;
    /// assert_eq!(cells.get("cell1")?.writer_url(), ":memory:");
    /// assert_eq!(
    ///     cells.get("cell7").unwrap_err().message(),
    ///     "no cell `cell7` in this CellMap (its cells: cell1)",
    /// );
    /// # Ok(()) }
    /// ```
    pub fn get(&self, id: &str) -> Result<&Facade<C>, Error> {
        self.cells.get(id).ok_or_else(|| {
            let shown = if check_id(id).is_ok() {
                id.to_owned()
            } else {
                id.chars()
                    .take(MAX_ID_CHARS)
                    .flat_map(char::escape_default)
                    .collect()
            };
            let known: Vec<&str> = self.ids().collect();
            Error::config(format!(
                "no cell `{shown}` in this CellMap (its cells: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    /// The cells' ids, in order.
    ///
    /// ```
    /// let cells = diesel_facade::CellMap::<diesel::SqliteConnection>::new();
    /// assert_eq!(cells.ids().count(), 0);
    /// ```
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.cells.keys().map(String::as_str)
    }

    /// The cells and their facades, in id order.
    ///
    /// ```
    /// use diesel_facade::{CellMap, Facade};
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let mut cells = CellMap::new();
    /// cells.insert("a", Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?)?;
    /// for (id, db) in cells.iter() {
    ///     assert_eq!((id, db.replica_count()), ("a", 0));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Facade<C>)> {
        self.cells.iter().map(|(id, db)| (id.as_str(), db))
    }

    /// How many cells there are.
    ///
    /// ```
    /// assert_eq!(diesel_facade::CellMap::<diesel::SqliteConnection>::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether there are no cells.
    ///
    /// ```
    /// assert!(diesel_facade::CellMap::<diesel::SqliteConnection>::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

impl<C: SupportedConnection> Default for CellMap<C> {
    fn default() -> Self {
        CellMap::new()
    }
}

impl<C: SupportedConnection> Clone for CellMap<C> {
    /// Shares every cell's pools (see [`Facade`]'s `Clone`).
    fn clone(&self) -> Self {
        CellMap {
            cells: self.cells.clone(),
        }
    }
}

impl<C: SupportedConnection> fmt::Debug for CellMap<C> {
    /// Each cell's facade, whose URLs are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.cells.iter()).finish()
    }
}

/// A `Config` error unless `id` is a valid cell id. The error quotes no
/// more than the id's first characters, escaped.
fn check_id(id: &str) -> Result<(), Error> {
    let valid = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        return Ok(());
    }
    let quoted: String = id.chars().take(24).flat_map(char::escape_default).collect();
    Err(Error::config(format!(
        "`{quoted}` is not a cell id: use 1 to {MAX_ID_CHARS} ASCII letters, digits, `_`, `-` or `.`"
    )))
}

/// The `(id, url)` entries of a `DATABASE_CELLS` list: `ID=URL` entries,
/// where an entry without an `ID=` prefix continues the previous entry's
/// URL list (a MySQL failover list).
pub(super) fn parse_cell_list(list: &str) -> Result<Vec<(String, String)>, Error> {
    let mut cells: Vec<(String, String)> = Vec::new();
    for entry in split_url_list(list) {
        let prefix = entry
            .split_once('=')
            .filter(|(id, _)| check_id(id.trim()).is_ok() && !id.contains("://"));
        match (prefix, cells.last_mut()) {
            (Some((id, url)), _) => cells.push((id.trim().to_owned(), url.trim().to_owned())),
            (None, Some((_, url))) => {
                url.push(',');
                url.push_str(entry);
            }
            (None, None) => {
                return Err(Error::config(format!(
                    "{CELLS_VAR} must start with a cell's `ID=` (an id is 1 to {MAX_ID_CHARS} \
                     ASCII letters, digits, `_`, `-` or `.`), then its URL"
                )))
            }
        }
    }
    if cells.is_empty() {
        return Err(Error::config(format!("{CELLS_VAR} names no cell")));
    }
    Ok(cells)
}
