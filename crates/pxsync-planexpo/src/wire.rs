//! The Planexpo contract's paths, query parameter names and error codes (contracts.md A): every
//! string of the Planexpo API that is not a JSON field lives here. The JSON types themselves are
//! in `pxsync_core::planexpo`, the one place for them.

/// One Planexpo API operation: its route template (logged, named in errors) and its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint<'a> {
    OrdersPage,
    Order { order_id: &'a str },
    Catalog,
}

impl Endpoint<'_> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Endpoint::OrdersPage => "orders_page",
            Endpoint::Order { .. } => "order",
            Endpoint::Catalog => "catalog",
        }
    }

    /// Every operation is a `GET`.
    pub(crate) fn method(&self) -> &'static str {
        "GET"
    }

    pub(crate) fn route(&self) -> &'static str {
        match self {
            Endpoint::OrdersPage => "/api/v1/events/{event}/orders",
            Endpoint::Order { .. } => "/api/v1/events/{event}/orders/{order_id}",
            Endpoint::Catalog => "/api/v1/events/{event}/catalog",
        }
    }

    /// The path to append to the base URL (every segment percent-encoded).
    pub(crate) fn path(&self, event: &str) -> String {
        let e = encode_segment(event);
        match self {
            Endpoint::OrdersPage => format!("/api/v1/events/{e}/orders"),
            Endpoint::Order { order_id } => {
                format!("/api/v1/events/{e}/orders/{}", encode_segment(order_id))
            }
            Endpoint::Catalog => format!("/api/v1/events/{e}/catalog"),
        }
    }
}

/// Query parameters of the order feed.
pub(crate) const PARAM_UPDATED_SINCE: &str = "updated_since";
pub(crate) const PARAM_CURSOR: &str = "cursor";
pub(crate) const PARAM_LIMIT: &str = "limit";

/// The error codes the client tells apart.
pub(crate) const CODE_ORDER_NOT_FOUND: &str = "order_not_found";
pub(crate) const CODE_EVENT_NOT_FOUND: &str = "event_not_found";

/// Percent-encodes one path segment: everything but the RFC 3986 unreserved characters.
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fill_templates_with_encoded_segments() {
        assert_eq!(
            Endpoint::OrdersPage.path("salon-sante-2026"),
            "/api/v1/events/salon-sante-2026/orders"
        );
        assert_eq!(
            Endpoint::Order {
                order_id: "ord/7 Q"
            }
            .path("santé"),
            "/api/v1/events/sant%C3%A9/orders/ord%2F7%20Q"
        );
        assert_eq!(Endpoint::Catalog.path("x"), "/api/v1/events/x/catalog");
        assert_eq!(
            Endpoint::Order { order_id: "a" }.route(),
            "/api/v1/events/{event}/orders/{order_id}"
        );
    }
}
