//! Who may call: what each route needs ([`access`], declared by the
//! protocols), bearer tokens and their scopes ([`auth`]), and which browser
//! origins may call at all ([`cors`]).
//!
//! Both are layers around the whole router, so a route cannot be served
//! without passing them.

pub(crate) mod access;
pub(crate) mod auth;
pub(crate) mod cors;
