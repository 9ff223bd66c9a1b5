"""Salesforce Opportunities of the US and hotel accounts team.  Facts: /work/shared/platforms/salesforce.md."""

API_VERSION = "v62.0"
DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000  # Sforce-Query-Options: batchSize=
DAILY_API_LIMIT = 100_000  # rolling 24 h org allocation (base); over it: 403 REQUEST_LIMIT_EXCEEDED
OPPORTUNITY_FIELDS = ("Id", "Name", "Amount", "CurrencyIsoCode", "StageName", "Probability", "CloseDate", "IsClosed",
                      "IsWon", "IsDeleted", "AccountId", "OwnerId", "CreatedDate", "LastModifiedDate",
                      "SystemModstamp", "Invoice_Number__c", "Trade_Customer_Id__c", "Account_Name__c")
