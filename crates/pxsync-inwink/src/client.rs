//! The HTTP side: one request per call (plus one again after a 401 with a fresh token), the
//! answer classified, paging of queries. No retries here beyond that: the emitter owns backoff.

use crate::error::{Call, InwinkError, classify};
use crate::token::{Token, TokenSource};
use crate::wire::{
    self, Endpoint, PartnerBody, PartnerFilters, PersonBody, PersonFilters, QueryRequest,
    QueryResult, TeamMemberBody, TeamMemberFilters, WireEventProduct, WireList, WirePartner,
    WirePartnerProduct, WirePerson, WireQuantity, WireTeamMember,
};
use crate::{
    CallBudget, EventProduct, InwinkConfig, Page, Participant, Partner, PartnerProduct, TeamMember,
    transport_detail,
};
use pxsync_core::desired::DesiredParticipant;
use pxsync_core::plan::PartnerWrite;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// A query reads at most this many pages (of 100) before giving up on a server that never
/// ends its result.
const MAX_QUERY_PAGES: u32 = 1000;

/// Read-only access to one inwink event: the token, every `GET` and every query. A dry run gets
/// only this type, so it cannot write by construction.
#[derive(Clone)]
pub struct InwinkReader {
    inner: Arc<Inner>,
    /// Every API call waits for it first (the event's rate limit, shared between processes).
    budget: Option<Arc<dyn CallBudget>>,
}

struct Inner {
    http: reqwest::Client,
    /// Trailing slashes trimmed; paths are appended, never joined.
    base_url: String,
    event_id: String,
    tokens: TokenSource,
}

impl std::fmt::Debug for InwinkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InwinkReader")
            .field("base_url", &self.inner.base_url)
            .field("event_id", &self.inner.event_id)
            .field("budget", &self.budget.is_some())
            .finish_non_exhaustive()
    }
}

/// An HTTP answer as read (any status).
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

fn is_http_url(u: &str) -> bool {
    u.starts_with("http://") || u.starts_with("https://")
}

impl InwinkReader {
    pub fn new(cfg: InwinkConfig) -> Result<Self, InwinkError> {
        let config_error = |detail: &str| InwinkError::Config {
            detail: detail.to_owned(),
        };
        if !is_http_url(&cfg.base_url) {
            return Err(config_error(
                "the base url must start with http:// or https://",
            ));
        }
        if !is_http_url(&cfg.token_url) {
            return Err(config_error(
                "the token url must start with http:// or https://",
            ));
        }
        if cfg.event_id.trim().is_empty() {
            return Err(config_error("the event id is empty"));
        }
        if cfg.timeout.is_zero() {
            return Err(config_error("the timeout is zero"));
        }
        // One crypto provider for the whole process: ring. Already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pxsync-inwink/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| InwinkError::Config {
                detail: format!("cannot build the http client: {}", transport_detail(&e)),
            })?;
        let tokens = TokenSource::new(
            http.clone(),
            cfg.token_url,
            cfg.client_id,
            cfg.client_secret,
            cfg.scope,
        );
        Ok(InwinkReader {
            inner: Arc::new(Inner {
                http,
                base_url: cfg.base_url.trim_end_matches('/').to_owned(),
                event_id: cfg.event_id,
                tokens,
            }),
            budget: None,
        })
    }

    /// The same reader, each of whose API calls (a call sent again after a 401 included, token
    /// requests not) first waits for `budget`.
    pub fn with_budget(mut self, budget: Arc<dyn CallBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    pub fn event_id(&self) -> &str {
        &self.inner.event_id
    }

    // -----------------------------------------------------------------------------------------
    // Reads

    pub async fn get_partner(&self, id: &str) -> Result<Partner, InwinkError> {
        let w: WirePartner = self.call(Endpoint::GetPartner { id }, None::<&()>).await?;
        Ok(w.into())
    }

    /// Every partner whose `planexpo_order_id` is this order id (normally zero or one).
    pub async fn find_partners_by_order(
        &self,
        planexpo_order_id: &str,
    ) -> Result<Vec<Partner>, InwinkError> {
        let filters = PartnerFilters {
            planexpo_order_id: Some(planexpo_order_id.to_owned()),
        };
        let all: Vec<WirePartner> = self.query_all(Endpoint::QueryPartners, &filters).await?;
        Ok(all.into_iter().map(Partner::from).collect())
    }

    /// One page of all partners (`size` is kept within 1..=100).
    pub async fn partners_page(&self, index: u32, size: u32) -> Result<Page<Partner>, InwinkError> {
        let page: QueryResult<WirePartner> = self
            .query_page(
                Endpoint::QueryPartners,
                &PartnerFilters::default(),
                index,
                size,
            )
            .await?;
        Ok(Page {
            items: page.data.into_iter().map(Partner::from).collect(),
            total_count: page.total_count,
        })
    }

    pub async fn get_participant(&self, id: &str) -> Result<Participant, InwinkError> {
        let w: WirePerson = self
            .call(Endpoint::GetParticipant { id }, None::<&()>)
            .await?;
        Ok(w.into())
    }

    /// Every participant with this e-mail (inwink compares it ignoring case).
    pub async fn find_participants_by_email(
        &self,
        email: &str,
    ) -> Result<Vec<Participant>, InwinkError> {
        let filters = PersonFilters {
            email: Some(email.to_owned()),
        };
        let all: Vec<WirePerson> = self
            .query_all(Endpoint::QueryParticipants, &filters)
            .await?;
        Ok(all.into_iter().map(Participant::from).collect())
    }

    /// One page of all participants (`size` is kept within 1..=100).
    pub async fn participants_page(
        &self,
        index: u32,
        size: u32,
    ) -> Result<Page<Participant>, InwinkError> {
        let page: QueryResult<WirePerson> = self
            .query_page(
                Endpoint::QueryParticipants,
                &PersonFilters::default(),
                index,
                size,
            )
            .await?;
        Ok(Page {
            items: page.data.into_iter().map(Participant::from).collect(),
            total_count: page.total_count,
        })
    }

    /// Every team member of this partner (all pages).
    pub async fn team_members_of(&self, partner_id: &str) -> Result<Vec<TeamMember>, InwinkError> {
        let filters = TeamMemberFilters {
            exhibitor_id: Some(partner_id.to_owned()),
        };
        let all: Vec<WireTeamMember> = self.query_all(Endpoint::QueryTeamMembers, &filters).await?;
        Ok(all.into_iter().map(TeamMember::from).collect())
    }

    /// The partner products defined on the event.
    pub async fn event_products(&self) -> Result<Vec<EventProduct>, InwinkError> {
        let list: WireList<WireEventProduct> =
            self.call(Endpoint::EventProducts, None::<&()>).await?;
        Ok(list.data.into_iter().map(EventProduct::from).collect())
    }

    /// The product quantities this partner holds (products never set are not listed: 0).
    pub async fn partner_products(
        &self,
        partner_id: &str,
    ) -> Result<Vec<PartnerProduct>, InwinkError> {
        let list: WireList<WirePartnerProduct> = self
            .call(Endpoint::PartnerProducts { partner_id }, None::<&()>)
            .await?;
        Ok(list.data.into_iter().map(PartnerProduct::from).collect())
    }

    // -----------------------------------------------------------------------------------------
    // Plumbing

    /// The base URL with the endpoint's path appended (never `Url::join`, which would drop a
    /// path prefix of the base).
    fn url(&self, ep: &Endpoint<'_>) -> String {
        format!("{}{}", self.inner.base_url, ep.path(&self.inner.event_id))
    }

    async fn query_page<F: Serialize, T: DeserializeOwned>(
        &self,
        ep: Endpoint<'_>,
        filters: &F,
        index: u32,
        size: u32,
    ) -> Result<QueryResult<T>, InwinkError> {
        let request = QueryRequest {
            filters,
            page: wire::WirePage {
                index,
                size: size.clamp(1, wire::MAX_PAGE_SIZE),
            },
        };
        self.call(ep, Some(&request)).await
    }

    /// Reads every page of a query, until `totalCount` items (or a short page) were read.
    async fn query_all<F: Serialize, T: DeserializeOwned>(
        &self,
        ep: Endpoint<'_>,
        filters: &F,
    ) -> Result<Vec<T>, InwinkError> {
        let mut items = Vec::new();
        for index in 0..MAX_QUERY_PAGES {
            let page: QueryResult<T> = self
                .query_page(ep, filters, index, wire::MAX_PAGE_SIZE)
                .await?;
            let n = page.data.len();
            items.extend(page.data);
            if n < wire::MAX_PAGE_SIZE as usize || items.len() as u64 >= page.total_count {
                return Ok(items);
            }
        }
        tracing::warn!(
            route = ep.route(),
            pages = MAX_QUERY_PAGES,
            "inwink query did not end within the page limit"
        );
        Err(InwinkError::Garbage {
            call: Call::of(&ep),
            status: 200,
        })
    }

    /// One call whose 2xx answer must be this JSON type.
    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        ep: Endpoint<'_>,
        body: Option<&B>,
    ) -> Result<R, InwinkError> {
        let answer = self.call_raw(ep, body).await?;
        serde_json::from_slice(&answer.body).map_err(|_| InwinkError::Garbage {
            call: Call::of(&ep),
            status: answer.status,
        })
    }

    /// One call: a 2xx answer, or the classified error. After a 401 the token is refreshed
    /// and the call sent once more; a second 401 is [`InwinkError::Unauthorized`].
    async fn call_raw<B: Serialize>(
        &self,
        ep: Endpoint<'_>,
        body: Option<&B>,
    ) -> Result<Answer, InwinkError> {
        let call = Call::of(&ep);
        let span = tracing::info_span!(
            "inwink.call",
            method = call.method,
            route = call.route,
            status = tracing::field::Empty,
        );
        async {
            let url = self.url(&ep);
            let token = self.inner.tokens.get().await?;
            let mut answer = self.send(call, &ep, &url, body, &token).await?;
            if answer.status == 401 {
                tracing::debug!("inwink answered 401, refreshing the token");
                self.inner.tokens.invalidate(&token).await;
                let token = self.inner.tokens.get().await?;
                answer = self.send(call, &ep, &url, body, &token).await?;
                if answer.status == 401 {
                    tracing::Span::current().record("status", 401u16);
                    return Err(InwinkError::Unauthorized { call });
                }
            }
            tracing::Span::current().record("status", answer.status);
            if (200..300).contains(&answer.status) {
                Ok(answer)
            } else {
                let e = classify(
                    call,
                    answer.status,
                    answer.retry_after.as_deref(),
                    &answer.body,
                );
                tracing::debug!(code = e.code(), "inwink call failed");
                Err(e)
            }
        }
        .instrument(span)
        .await
    }

    async fn send<B: Serialize>(
        &self,
        call: Call,
        ep: &Endpoint<'_>,
        url: &str,
        body: Option<&B>,
        token: &Token,
    ) -> Result<Answer, InwinkError> {
        if let Some(budget) = &self.budget {
            budget.take().await;
        }
        let mut request = self
            .inner
            .http
            .request(ep.method(), url)
            .bearer_auth(&*token.value)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |e: reqwest::Error| InwinkError::Transport {
            call,
            timeout: e.is_timeout(),
            detail: transport_detail(&e),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

/// Read and write access to one inwink event.
#[derive(Clone, Debug)]
pub struct InwinkClient {
    reader: InwinkReader,
}

impl InwinkClient {
    pub fn new(cfg: InwinkConfig) -> Result<Self, InwinkError> {
        Ok(InwinkClient {
            reader: InwinkReader::new(cfg)?,
        })
    }

    /// The same client, each of whose API calls first waits for `budget`
    /// ([`InwinkReader::with_budget`]).
    pub fn with_budget(self, budget: Arc<dyn CallBudget>) -> Self {
        InwinkClient {
            reader: self.reader.with_budget(budget),
        }
    }

    /// The read half (what a dry run may be given).
    pub fn reader(&self) -> &InwinkReader {
        &self.reader
    }

    /// Creates a partner with every synchronised field (409 `duplicate_key` with `existingId`
    /// when another partner has this `planexpo_order_id`).
    pub async fn create_partner(&self, w: &PartnerWrite) -> Result<Partner, InwinkError> {
        let p: WirePartner = self
            .reader
            .call(Endpoint::CreatePartner, Some(&PartnerBody::from_write(w)))
            .await?;
        Ok(p.into())
    }

    /// Replaces every synchronised field of a partner (nulls clear stale values).
    pub async fn update_partner(&self, id: &str, w: &PartnerWrite) -> Result<Partner, InwinkError> {
        let p: WirePartner = self
            .reader
            .call(
                Endpoint::UpdatePartner { id },
                Some(&PartnerBody::from_write(w)),
            )
            .await?;
        Ok(p.into())
    }

    /// Creates a participant (409 `duplicate_key` when the e-mail exists, ignoring case).
    pub async fn create_participant(
        &self,
        p: &DesiredParticipant,
    ) -> Result<Participant, InwinkError> {
        let w: WirePerson = self
            .reader
            .call(
                Endpoint::CreateParticipant,
                Some(&PersonBody::from_desired(p)),
            )
            .await?;
        Ok(w.into())
    }

    /// Replaces every synchronised field of a participant (never its categories).
    pub async fn update_participant(
        &self,
        id: &str,
        p: &DesiredParticipant,
    ) -> Result<Participant, InwinkError> {
        let w: WirePerson = self
            .reader
            .call(
                Endpoint::UpdateParticipant { id },
                Some(&PersonBody::from_desired(p)),
            )
            .await?;
        Ok(w.into())
    }

    /// Links a participant to a partner with the `Admin` role (409 when linked already).
    pub async fn link_team_member(
        &self,
        partner_id: &str,
        participant_id: &str,
    ) -> Result<TeamMember, InwinkError> {
        let t: WireTeamMember = self
            .reader
            .call(
                Endpoint::LinkTeamMember,
                Some(&TeamMemberBody::admin(partner_id, participant_id)),
            )
            .await?;
        Ok(t.into())
    }

    /// Sets a partner's product quantity. inwink refuses a decrease (400 `quantity_decrease`
    /// with `current`); the caller never sends an equal or lower quantity.
    pub async fn set_quantity(
        &self,
        partner_id: &str,
        product_id: &str,
        quantity: u32,
    ) -> Result<(), InwinkError> {
        let ep = Endpoint::SetQuantity {
            partner_id,
            product_id,
        };
        let answer = self
            .reader
            .call_raw(ep, Some(&WireQuantity { quantity }))
            .await?;
        // The answer's body is not used, but it must be empty or JSON: anything else is garbage
        // (and the outcome unknown).
        let blank = answer.body.iter().all(u8::is_ascii_whitespace);
        if blank || serde_json::from_slice::<serde_json::Value>(&answer.body).is_ok() {
            Ok(())
        } else {
            Err(InwinkError::Garbage {
                call: Call::of(&ep),
                status: answer.status,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn paths_are_appended_to_the_base_keeping_its_prefix() {
        let cfg = InwinkConfig::new(
            "https://gateway.example/inwink/v2//",
            "https://gateway.example/oauth/token",
            "id",
            Secret::new("s"),
            "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b",
        );
        let r = InwinkReader::new(cfg).unwrap();
        assert_eq!(
            r.url(&Endpoint::GetPartner { id: "a7c3e1f0" }),
            "https://gateway.example/inwink/v2/8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b/exhibitor/a7c3e1f0"
        );
        assert_eq!(r.event_id(), "8c1f5a2e-3b4d-4e6f-9a7b-1c2d3e4f5a6b");
    }
}
