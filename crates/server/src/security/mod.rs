//! Who may call: what each route needs ([`access`], declared by the
//! protocols), bearer tokens and their scopes ([`auth`]), which browser
//! origins may call at all ([`cors`]), and, without tokens, which host
//! names are answered and which pages may write ([`browser`]).
//!
//! All are layers around the whole router, so a route cannot be served
//! without passing them.

pub(crate) mod access;
pub(crate) mod auth;
pub(crate) mod browser;
pub(crate) mod cors;
