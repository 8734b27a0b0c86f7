//! Writing a SQLite deployment's tables into an empty PostgreSQL database,
//! for the move of `crate::transfer`: one transaction from the schema's
//! creation to the commit, so a move that stops leaves nothing behind.

use futures_util::future::try_join_all;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};

use super::core::{Result, connect_one};
use super::migrate::apply_schema;
use crate::error::StoreError;
use crate::transfer::cells::{Cell, TABLES, TransferError};

/// Rows sent together (pipelined on the connection) while inserting.
const INSERT_BATCH: usize = 512;

/// A column of the target schema.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    ty: Type,
}

/// An open transaction on the target database.
pub struct Importer {
    client: Client,
}

impl Importer {
    /// Connects to `url`, begins the transaction, creates the schema (or
    /// finds this version's, empty): a database holding rows is refused.
    pub async fn begin(url: &str) -> std::result::Result<Self, TransferError> {
        let client = connect_one(url).await?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(StoreError::from)?;
        if !apply_schema(&client).await? {
            for table in TABLES {
                let any: bool = client
                    .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
                    .await
                    .map_err(StoreError::from)?
                    .get(0);
                if any {
                    return Err(TransferError::TargetNotEmpty(format!("table {table}")));
                }
            }
        }
        Ok(Self { client })
    }

    /// The columns of `table` in the target schema, in order.
    pub async fn columns(&self, table: &str) -> Result<Vec<Column>> {
        let rows = self
            .client
            .query(
                "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                &[&table],
            )
            .await?;
        if rows.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "table {table} absente du schéma PostgreSQL"
            )));
        }
        rows.into_iter()
            .map(|r| {
                let (name, kind): (String, String) = (r.get(0), r.get(1));
                let ty = match kind.as_str() {
                    "bigint" => Type::INT8,
                    "integer" => Type::INT4,
                    "boolean" => Type::BOOL,
                    "double precision" => Type::FLOAT8,
                    "text" => Type::TEXT,
                    "bytea" => Type::BYTEA,
                    other => {
                        return Err(StoreError::Corrupt(format!(
                            "colonne {table}.{name} de type {other}"
                        )));
                    }
                };
                Ok(Column { name, ty })
            })
            .collect()
    }

    /// The rows as PostgreSQL will hold them: each cell in its column's
    /// type (SQLite's 0/1 as a boolean, an integer in a real column as a
    /// real). A cell that does not fit its column stops the move.
    pub fn normalize(
        &self,
        table: &str,
        columns: &[Column],
        rows: Vec<Vec<Cell>>,
    ) -> std::result::Result<Vec<Vec<Cell>>, TransferError> {
        rows.into_iter()
            .map(|row| {
                row.into_iter()
                    .zip(columns)
                    .map(|(cell, c)| {
                        let ok = match (&c.ty, cell) {
                            (_, Cell::Null) => Some(Cell::Null),
                            (t, Cell::Int(v)) if *t == Type::INT8 => Some(Cell::Int(v)),
                            (t, Cell::Int(v)) if *t == Type::INT4 && i32::try_from(v).is_ok() => {
                                Some(Cell::Int(v))
                            }
                            (t, Cell::Int(v)) if *t == Type::BOOL && (v == 0 || v == 1) => {
                                Some(Cell::Int(v))
                            }
                            (t, Cell::Int(v)) if *t == Type::FLOAT8 => Some(Cell::Real(v as f64)),
                            (t, Cell::Real(v)) if *t == Type::FLOAT8 => Some(Cell::Real(v)),
                            (t, Cell::Text(s)) if *t == Type::TEXT => Some(Cell::Text(s)),
                            (t, Cell::Blob(b)) if *t == Type::BYTEA => Some(Cell::Blob(b)),
                            _ => None,
                        };
                        ok.ok_or_else(|| {
                            TransferError::Mismatch(format!(
                                "{table}.{} : valeur qui ne tient pas dans une colonne {}",
                                c.name, c.ty
                            ))
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Inserts normalized rows.
    pub async fn insert(&self, table: &str, columns: &[Column], rows: &[Vec<Cell>]) -> Result<()> {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let types: Vec<Type> = columns.iter().map(|c| c.ty.clone()).collect();
        let stmt = self
            .client
            .prepare_typed(
                &format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    names.join(", "),
                    marks.join(", ")
                ),
                &types,
            )
            .await?;
        for batch in rows.chunks(INSERT_BATCH) {
            let params: Vec<Vec<Box<dyn ToSql + Sync + Send>>> = batch
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(columns)
                        .map(|(cell, c)| param(cell, &c.ty))
                        .collect()
                })
                .collect();
            try_join_all(params.iter().map(|p| {
                let refs: Vec<&(dyn ToSql + Sync)> = p
                    .iter()
                    .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                let stmt = &stmt;
                async move { self.client.execute(stmt, &refs).await }
            }))
            .await?;
        }
        Ok(())
    }

    /// Every row of `table` as stored, in cells.
    pub async fn read_back(&self, table: &str, columns: &[Column]) -> Result<Vec<Vec<Cell>>> {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let rows = self
            .client
            .query(&format!("SELECT {} FROM {table}", names.join(", ")), &[])
            .await?;
        Ok(rows.iter().map(|r| cells(r, columns)).collect())
    }

    /// Sets the sequences after the rows they numbered: the log's and the
    /// audit's next seq, and the reference revision (`ref_rev` as SQLite
    /// kept it, or the highest revision stored if that is higher).
    pub async fn restart_sequences(&self, ref_rev: i64) -> Result<()> {
        self.client
            .batch_execute(
                "SELECT setval(pg_get_serial_sequence('log', 'seq'), COALESCE((SELECT MAX(seq) FROM log), 0) + 1, false);
                 SELECT setval(pg_get_serial_sequence('audit', 'seq'), COALESCE((SELECT MAX(seq) FROM audit), 0) + 1, false);",
            )
            .await?;
        self.client
            .execute(
                "SELECT setval('ref_rev', GREATEST($1::BIGINT,
                   COALESCE((SELECT MAX(rev) FROM offices), 0),
                   COALESCE((SELECT MAX(rev) FROM complexes), 0),
                   COALESCE((SELECT MAX(rev) FROM assignments), 0)) + 1, false)",
                &[&ref_rev],
            )
            .await?;
        Ok(())
    }

    /// Makes everything written visible at once.
    pub async fn commit(self) -> Result<()> {
        self.client.batch_execute("COMMIT").await?;
        Ok(())
    }
}

/// A normalized cell as a parameter of its column's type.
fn param(cell: &Cell, ty: &Type) -> Box<dyn ToSql + Sync + Send> {
    match (cell, ty) {
        (Cell::Null, t) if *t == Type::INT8 => Box::new(None::<i64>),
        (Cell::Null, t) if *t == Type::INT4 => Box::new(None::<i32>),
        (Cell::Null, t) if *t == Type::BOOL => Box::new(None::<bool>),
        (Cell::Null, t) if *t == Type::FLOAT8 => Box::new(None::<f64>),
        (Cell::Null, t) if *t == Type::BYTEA => Box::new(None::<Vec<u8>>),
        (Cell::Null, _) => Box::new(None::<String>),
        (Cell::Int(v), t) if *t == Type::INT4 => Box::new(*v as i32),
        (Cell::Int(v), t) if *t == Type::BOOL => Box::new(*v != 0),
        (Cell::Int(v), _) => Box::new(*v),
        (Cell::Real(v), _) => Box::new(*v),
        (Cell::Text(s), _) => Box::new(s.clone()),
        (Cell::Blob(b), _) => Box::new(b.clone()),
    }
}

/// A stored row in cells, read by column type (a boolean as 0/1, as SQLite
/// holds it).
fn cells(r: &Row, columns: &[Column]) -> Vec<Cell> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cell = match &c.ty {
                t if *t == Type::INT8 => r.get::<_, Option<i64>>(i).map(Cell::Int),
                t if *t == Type::INT4 => r.get::<_, Option<i32>>(i).map(|v| Cell::Int(v.into())),
                t if *t == Type::BOOL => r.get::<_, Option<bool>>(i).map(|v| Cell::Int(v.into())),
                t if *t == Type::FLOAT8 => r.get::<_, Option<f64>>(i).map(Cell::Real),
                t if *t == Type::BYTEA => r.get::<_, Option<Vec<u8>>>(i).map(Cell::Blob),
                _ => r.get::<_, Option<String>>(i).map(Cell::Text),
            };
            cell.unwrap_or(Cell::Null)
        })
        .collect()
}
