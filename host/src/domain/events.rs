//! Events: what happened in a tree, reported to its webhooks (API.md,
//! "Traffic"). Each is written to the `events` outbox in the transaction of
//! the change it reports.

/// Every event type a webhook may subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    AccountCreated,
    AccountSuspended,
    AccountUnsuspended,
    AccountDeleted,
    AccountMerged,
    BudgetLow,
    MessageInbound,
    OperationCompleted,
    CampaignCompleted,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::AccountCreated,
        EventType::AccountSuspended,
        EventType::AccountUnsuspended,
        EventType::AccountDeleted,
        EventType::AccountMerged,
        EventType::BudgetLow,
        EventType::MessageInbound,
        EventType::OperationCompleted,
        EventType::CampaignCompleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::AccountCreated => "account.created",
            EventType::AccountSuspended => "account.suspended",
            EventType::AccountUnsuspended => "account.unsuspended",
            EventType::AccountDeleted => "account.deleted",
            EventType::AccountMerged => "account.merged",
            EventType::BudgetLow => "budget.low",
            EventType::MessageInbound => "message.inbound",
            EventType::OperationCompleted => "operation.completed",
            EventType::CampaignCompleted => "campaign.completed",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn every_type_reads_back_from_its_name() {
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
        }
        assert_eq!(EventType::parse("account.*"), None);
    }
}
