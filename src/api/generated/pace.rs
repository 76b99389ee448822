//! The rate-limit class of every Bot API method, in one table: the one the
//! limiter reads (`limit::Pace::of`, see #12).
//!
//! Telegram's flood limits count messages that appear in a chat; an edit or a
//! chat action is not one, but is refused while a 429 holds its chat; the
//! rest is not paced. Every method is listed by name, so that a new one in
//! the facts fails the test below until someone decides its class.

/// How the rate limiter treats a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaceClass {
    /// A new message in a chat (sends, forwards, copies): the chat's turn,
    /// then a global turn.
    Message,
    /// An edit of a message already sent, a chat action or a draft: no turn
    /// of its own, but held while a 429 holds its chat or the whole bot.
    Held,
    /// Everything else: never waits.
    Free,
}

/// The class of `method` (exact Bot API name); `None` for a name that is not
/// a method of this version.
pub fn pace_class(method: &str) -> Option<PaceClass> {
    Some(match method {
        "sendMessage" | "forwardMessage" | "forwardMessages" | "copyMessage" | "copyMessages"
        | "sendPhoto" | "sendLivePhoto" | "sendAudio" | "sendDocument" | "sendVideo"
        | "sendAnimation" | "sendVoice" | "sendVideoNote" | "sendPaidMedia" | "sendMediaGroup"
        | "sendLocation" | "sendVenue" | "sendContact" | "sendPoll" | "sendChecklist"
        | "sendDice" | "sendSticker" | "sendRichMessage" | "sendInvoice" | "sendGame"
        | "sendGift" => PaceClass::Message,
        "editMessageText"
        | "editMessageCaption"
        | "editMessageMedia"
        | "editMessageLiveLocation"
        | "stopMessageLiveLocation"
        | "editMessageChecklist"
        | "editMessageReplyMarkup"
        | "stopPoll"
        | "editEphemeralMessageText"
        | "editEphemeralMessageMedia"
        | "editEphemeralMessageCaption"
        | "editEphemeralMessageReplyMarkup"
        | "setGameScore"
        | "sendChatAction"
        | "sendMessageDraft"
        | "sendRichMessageDraft" => PaceClass::Held,
        // Updates, webhooks and the bot itself.
        "getUpdates"
        | "setWebhook"
        | "deleteWebhook"
        | "getWebhookInfo"
        | "getMe"
        | "logOut"
        | "close"
        | "setMyCommands"
        | "deleteMyCommands"
        | "getMyCommands"
        | "setMyName"
        | "getMyName"
        | "setMyDescription"
        | "getMyDescription"
        | "setMyShortDescription"
        | "getMyShortDescription"
        | "setMyProfilePhoto"
        | "removeMyProfilePhoto"
        | "setChatMenuButton"
        | "getChatMenuButton"
        | "setMyDefaultAdministratorRights"
        | "getMyDefaultAdministratorRights"
        | "getManagedBotToken"
        | "replaceManagedBotToken"
        | "getManagedBotAccessSettings"
        | "setManagedBotAccessSettings" => PaceClass::Free,
        // Users, files, reactions, deletions.
        "setMessageReaction"
        | "getUserProfilePhotos"
        | "getUserProfileAudios"
        | "setUserEmojiStatus"
        | "getFile"
        | "getUserChatBoosts"
        | "getUserPersonalChatMessages"
        | "deleteMessage"
        | "deleteMessages"
        | "deleteEphemeralMessage"
        | "deleteMessageReaction"
        | "deleteAllMessageReactions"
        | "approveSuggestedPost"
        | "declineSuggestedPost" => PaceClass::Free,
        // Chat administration.
        "banChatMember"
        | "unbanChatMember"
        | "restrictChatMember"
        | "promoteChatMember"
        | "setChatAdministratorCustomTitle"
        | "setChatMemberTag"
        | "banChatSenderChat"
        | "unbanChatSenderChat"
        | "setChatPermissions"
        | "exportChatInviteLink"
        | "createChatInviteLink"
        | "editChatInviteLink"
        | "createChatSubscriptionInviteLink"
        | "editChatSubscriptionInviteLink"
        | "revokeChatInviteLink"
        | "approveChatJoinRequest"
        | "declineChatJoinRequest"
        | "answerChatJoinRequestQuery"
        | "sendChatJoinRequestWebApp"
        | "setChatPhoto"
        | "deleteChatPhoto"
        | "setChatTitle"
        | "setChatDescription"
        | "pinChatMessage"
        | "unpinChatMessage"
        | "unpinAllChatMessages"
        | "leaveChat"
        | "getChat"
        | "getChatAdministrators"
        | "getChatMemberCount"
        | "getChatMember"
        | "setChatStickerSet"
        | "deleteChatStickerSet" => PaceClass::Free,
        // Forum topics.
        "getForumTopicIconStickers"
        | "createForumTopic"
        | "editForumTopic"
        | "closeForumTopic"
        | "reopenForumTopic"
        | "deleteForumTopic"
        | "unpinAllForumTopicMessages"
        | "editGeneralForumTopic"
        | "closeGeneralForumTopic"
        | "reopenGeneralForumTopic"
        | "hideGeneralForumTopic"
        | "unhideGeneralForumTopic"
        | "unpinAllGeneralForumTopicMessages" => PaceClass::Free,
        // Answers to queries: they do not post in a chat of the bot's.
        "answerCallbackQuery"
        | "answerGuestQuery"
        | "answerWebAppQuery"
        | "answerInlineQuery"
        | "answerShippingQuery"
        | "answerPreCheckoutQuery"
        | "savePreparedInlineMessage"
        | "savePreparedKeyboardButton" => PaceClass::Free,
        // Business accounts, gifts, verification, stories.
        "getBusinessConnection"
        | "readBusinessMessage"
        | "deleteBusinessMessages"
        | "setBusinessAccountName"
        | "setBusinessAccountUsername"
        | "setBusinessAccountBio"
        | "setBusinessAccountProfilePhoto"
        | "removeBusinessAccountProfilePhoto"
        | "setBusinessAccountGiftSettings"
        | "getBusinessAccountStarBalance"
        | "transferBusinessAccountStars"
        | "getBusinessAccountGifts"
        | "getAvailableGifts"
        | "giftPremiumSubscription"
        | "getUserGifts"
        | "getChatGifts"
        | "convertGiftToStars"
        | "upgradeGift"
        | "transferGift"
        | "verifyUser"
        | "verifyChat"
        | "removeUserVerification"
        | "removeChatVerification"
        | "postStory"
        | "repostStory"
        | "editStory"
        | "deleteStory" => PaceClass::Free,
        // Stickers.
        "getStickerSet"
        | "getCustomEmojiStickers"
        | "uploadStickerFile"
        | "createNewStickerSet"
        | "addStickerToSet"
        | "setStickerPositionInSet"
        | "deleteStickerFromSet"
        | "replaceStickerInSet"
        | "setStickerEmojiList"
        | "setStickerKeywords"
        | "setStickerMaskPosition"
        | "setStickerSetTitle"
        | "setStickerSetThumbnail"
        | "setCustomEmojiStickerSetThumbnail"
        | "deleteStickerSet" => PaceClass::Free,
        // Payments, passport, games.
        "createInvoiceLink"
        | "getMyStarBalance"
        | "getStarTransactions"
        | "refundStarPayment"
        | "editUserStarSubscription"
        | "setPassportDataErrors"
        | "getGameHighScores" => PaceClass::Free,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::methods::METHODS;
    use super::*;

    #[test]
    fn every_method_has_a_class() {
        let unclassified: Vec<&str> = METHODS
            .iter()
            .copied()
            .filter(|m| pace_class(m).is_none())
            .collect();
        assert_eq!(unclassified, Vec::<&str>::new());
        assert_eq!(pace_class("sendTelepathy"), None);
        assert_eq!(pace_class("sendmessage"), None, "names are exact");
    }
}
