//! Projects, plans and API keys.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::models::{ApiKey, PlanRow, Project};
use crate::schema::{api_keys, plans, projects};
use crate::{Conn, DbError};

/// What an authenticated request knows about its caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
    pub project: Project,
    pub plan: PlanRow,
}

/// Finds the live (not revoked) key with this hash, with its project and plan.
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    key_hash: &[u8],
) -> Result<Option<Caller>, DbError> {
    let row = caller_query(key_hash)
        .first::<(ApiKey, Project, PlanRow)>(conn)
        .await
        .optional()?;
    Ok(row.map(|(key, project, plan)| Caller { key, project, plan }))
}

/// The live key with this hash, its project and plan (at most one row).
#[allow(clippy::type_complexity)]
pub(crate) fn caller_query(
    key_hash: &[u8],
) -> diesel::dsl::Limit<
    diesel::dsl::Select<
        diesel::dsl::Filter<
            diesel::dsl::Filter<
                diesel::dsl::InnerJoin<
                    api_keys::table,
                    diesel::dsl::InnerJoin<projects::table, plans::table>,
                >,
                diesel::dsl::Eq<api_keys::key_hash, &[u8]>,
            >,
            diesel::dsl::IsNull<api_keys::revoked_at>,
        >,
        (
            diesel::dsl::AsSelect<ApiKey, diesel::pg::Pg>,
            diesel::dsl::AsSelect<Project, diesel::pg::Pg>,
            diesel::dsl::AsSelect<PlanRow, diesel::pg::Pg>,
        ),
    >,
> {
    api_keys::table
        .inner_join(projects::table.inner_join(plans::table))
        .filter(api_keys::key_hash.eq(key_hash))
        .filter(api_keys::revoked_at.is_null())
        .select((
            ApiKey::as_select(),
            Project::as_select(),
            PlanRow::as_select(),
        ))
        .limit(1)
}

pub async fn plan_exists(conn: &mut Conn, name: &str) -> Result<bool, DbError> {
    let n: i64 = plans::table
        .filter(plans::name.eq(name))
        .count()
        .get_result(conn)
        .await?;
    Ok(n > 0)
}

pub async fn find_project(conn: &mut Conn, id: Uuid) -> Result<Option<Project>, DbError> {
    Ok(projects::table
        .find(id)
        .select(Project::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn find_project_by_name(conn: &mut Conn, name: &str) -> Result<Option<Project>, DbError> {
    Ok(projects::table
        .filter(projects::name.eq(name))
        .select(Project::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn list_projects(conn: &mut Conn) -> Result<Vec<Project>, DbError> {
    Ok(projects::table
        .order(projects::created_at.asc())
        .select(Project::as_select())
        .load(conn)
        .await?)
}

pub async fn create_project(
    conn: &mut Conn,
    name: &str,
    owner_email: &str,
    plan: &str,
) -> Result<Project, DbError> {
    let project = Project {
        id: Uuid::now_v7(),
        name: name.to_string(),
        owner_email: owner_email.to_string(),
        plan: plan.to_string(),
        default_email_enabled: true,
        created_at: Utc::now(),
    };
    diesel::insert_into(projects::table)
        .values(&project)
        .execute(conn)
        .await?;
    Ok(project)
}

pub async fn set_plan(conn: &mut Conn, project_id: Uuid, plan: &str) -> Result<bool, DbError> {
    let n = diesel::update(projects::table.find(project_id))
        .set(projects::plan.eq(plan))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

pub async fn insert_key(
    conn: &mut Conn,
    project_id: Uuid,
    kind: &str,
    prefix: &str,
    key_hash: Vec<u8>,
) -> Result<ApiKey, DbError> {
    let key = ApiKey {
        id: Uuid::now_v7(),
        project_id,
        kind: kind.to_string(),
        prefix: prefix.to_string(),
        key_hash,
        created_at: Utc::now(),
        revoked_at: None,
    };
    diesel::insert_into(api_keys::table)
        .values(&key)
        .on_conflict(api_keys::key_hash)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(key)
}

pub async fn key_by_hash(conn: &mut Conn, key_hash: &[u8]) -> Result<Option<ApiKey>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(key_hash))
        .select(ApiKey::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Keys whose display prefix starts with `prefix`.
pub async fn keys_by_prefix(conn: &mut Conn, prefix: &str) -> Result<Vec<ApiKey>, DbError> {
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    Ok(api_keys::table
        .filter(api_keys::prefix.like(pattern))
        .order(api_keys::created_at.asc())
        .select(ApiKey::as_select())
        .load(conn)
        .await?)
}

/// Revokes a key; it then gets the same `401` as an unknown key.
pub async fn revoke_key(conn: &mut Conn, key_id: Uuid) -> Result<bool, DbError> {
    let n = diesel::update(
        api_keys::table
            .find(key_id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Turns the owner's default email on or off; `false` when there is no such project.
pub async fn set_default_email(
    conn: &mut Conn,
    project_id: Uuid,
    enabled: bool,
) -> Result<bool, DbError> {
    let n = diesel::update(projects::table.find(project_id))
        .set(projects::default_email_enabled.eq(enabled))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Changes the owner's address (where default completion emails go); `false` when there
/// is no such project.
pub async fn set_owner_email(
    conn: &mut Conn,
    project_id: Uuid,
    owner_email: &str,
) -> Result<bool, DbError> {
    let n = diesel::update(projects::table.find(project_id))
        .set(projects::owner_email.eq(owner_email))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// A project's keys, newest first, revoked ones included.
pub async fn keys_of_project(conn: &mut Conn, project_id: Uuid) -> Result<Vec<ApiKey>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::project_id.eq(project_id))
        .order(api_keys::created_at.desc())
        .select(ApiKey::as_select())
        .load(conn)
        .await?)
}
