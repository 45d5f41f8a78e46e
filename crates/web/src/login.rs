//! The sign-in page of a private deployment (see `access`): a browser trades an access key
//! for a session cookie once, instead of sending the key with every request.

use crate::access::{safe_next, unix_now, SESSION_COOKIE, SESSION_LIFETIME};
use crate::pages::html;
use crate::AppState;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use askama::Template;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    failed: bool,
}

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    key: String,
    next: Option<String>,
}

#[get("/login")]
pub async fn login_page(state: web::Data<AppState>, query: web::Query<NextQuery>) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    if state.access_keys.is_none() {
        return HttpResponse::SeeOther().insert_header(("Location", next)).finish();
    }
    html(StatusCode::OK, &LoginPage { next, failed: false })
}

#[post("/login")]
pub async fn login(state: web::Data<AppState>, form: web::Form<LoginForm>) -> HttpResponse {
    let next = safe_next(form.next.as_deref());
    let Some(keys) = &state.access_keys else {
        return HttpResponse::SeeOther().insert_header(("Location", next)).finish();
    };
    let expires = unix_now() + SESSION_LIFETIME.as_secs();
    match keys.check_key(&form.key).and_then(|name| keys.session_for(&name, expires).map(|session| (name, session))) {
        Some((name, session)) => {
            tracing::info!(key = name, "signed in");
            let cookie = Cookie::build(SESSION_COOKIE, session)
                .path("/")
                .http_only(true)
                .secure(state.settings.secure_cookies)
                .same_site(SameSite::Lax)
                .max_age(actix_web::cookie::time::Duration::seconds(SESSION_LIFETIME.as_secs() as i64))
                .finish();
            HttpResponse::SeeOther().cookie(cookie).insert_header(("Location", next)).finish()
        }
        None => {
            tracing::warn!("sign-in with a key that is not valid");
            html(StatusCode::UNAUTHORIZED, &LoginPage { next, failed: true })
        }
    }
}

#[post("/logout")]
pub async fn logout() -> HttpResponse {
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    HttpResponse::SeeOther().cookie(gone).insert_header(("Location", "/login")).finish()
}
