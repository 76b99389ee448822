//! Sending any method: the [`Method`] trait every generated parameter
//! struct implements, and [`Client::send`] on top of [`Client::call`].

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::Client;
use crate::Error;

/// A Bot API method's parameters: its name and the type of its result.
pub trait Method: Serialize {
    /// The method's name, as the Bot API spells it (`sendPhoto`).
    const NAME: &'static str;
    /// What the method returns on success.
    type Output: DeserializeOwned + Send + 'static;
}

impl Client {
    /// Sends any method with its typed parameters and decodes its typed
    /// result, with [`Client::call`]'s retries and pacing; the result is
    /// decoded on an io thread, under the nesting limits
    /// ([`MAX_MESSAGE_DEPTH`](super::MAX_MESSAGE_DEPTH)).
    ///
    /// # Errors
    /// As [`Client::call`]; a result nested too deep is [`Error::Decode`].
    ///
    /// # Examples
    /// ```
    /// use smolgram::api::generated::methods::{GetMe, SendMessage};
    /// use smolgram::api::{types::ChatId, Client, Token};
    /// use smolgram::testkit::FakeApi;
    ///
    /// let api = FakeApi::start();
    /// let client = Client::new(&api.url(), &Token::parse(FakeApi::TOKEN).unwrap(), 2);
    /// let rt = smolgram::Runtime::new();
    /// let me = rt.block_on(client.send(&GetMe::new())).unwrap().unwrap();
    /// assert!(me.is_bot);
    /// let hi = SendMessage::new(ChatId(7), "hi").disable_notification(true);
    /// let sent = rt.block_on(client.send(&hi)).unwrap().unwrap();
    /// assert_eq!(sent.text.as_deref(), Some("hi"));
    /// assert_eq!(api.sent()[0].text, "hi");
    /// ```
    pub async fn send<M: Method>(&self, method: &M) -> Result<M::Output, Error> {
        self.call(M::NAME, method).await
    }
}
