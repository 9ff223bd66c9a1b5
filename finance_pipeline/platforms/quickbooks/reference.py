"""Reference data of the emulated QuickBooks Online company: a UK VAT-registered business, home
currency GBP, multicurrency on, "warn/prevent duplicate document numbers" on (so 6140 applies).

Ids are QBO-style strings of digits.  Shapes follow the v3 entities `TaxCode`, `Item`, `Account`,
`CompanyInfo` and `Preferences` (field names as Intuit documents them); only what the emulator
validates against is modelled in depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

HOME_CURRENCY = "GBP"
ENABLED_CURRENCIES = {"GBP": "British Pound Sterling", "EUR": "Euro", "USD": "United States Dollar",
                      "AUD": "Australian Dollar"}
DEFAULT_RATES = {"GBP": Decimal("1"), "EUR": Decimal("0.854701"), "USD": Decimal("0.787402"),
                 "AUD": Decimal("0.518135")}  # home currency per unit, as QBO's ExchangeRate
COUNTRY = "GB"
MINOR_VERSION = 75  # versions 1-74 are served as 75 since Aug 2025


@dataclass(frozen=True)
class TaxCode:
    id: str
    name: str
    rate: Decimal  # percent on sales
    description: str

    def wire(self) -> dict:
        return {"Id": self.id, "Name": self.name, "Description": self.description, "Active": True,
                "Taxable": self.rate > 0, "TaxGroup": True, "Hidden": False,
                "SalesTaxRateList": {"TaxRateDetail": [{"TaxRateRef": {"value": f"1{self.id}", "name": self.name},
                                                        "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0}]},
                "PurchaseTaxRateList": {"TaxRateDetail": []}, "SyncToken": "0", "domain": "QBO", "sparse": False,
                "MetaData": {"CreateTime": "2025-01-01T00:00:00+00:00", "LastUpdatedTime": "2025-01-01T00:00:00+00:00"}}


TAX_CODES: dict[str, TaxCode] = {t.id: t for t in (
    TaxCode("2", "20.0% S", Decimal("20"), "Standard rated 20%"),
    TaxCode("4", "5.0% R", Decimal("5"), "Reduced rated 5%"),
    TaxCode("6", "0.0% Z", Decimal("0"), "Zero rated"),
    TaxCode("8", "Exempt", Decimal("0"), "Exempt"),
    TaxCode("10", "No VAT", Decimal("0"), "Outside the scope of VAT"),
    TaxCode("12", "0.0% ECG", Decimal("0"), "EC goods, zero rated (reverse charge)"),
)}


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    account_type: str
    account_sub_type: str
    classification: str

    def wire(self) -> dict:
        return {"Id": self.id, "Name": self.name, "FullyQualifiedName": self.name, "AccountType": self.account_type,
                "AccountSubType": self.account_sub_type, "Classification": self.classification, "Active": True,
                "SubAccount": False, "CurrencyRef": {"value": HOME_CURRENCY, "name": ENABLED_CURRENCIES[HOME_CURRENCY]},
                "CurrentBalance": 0, "SyncToken": "0", "domain": "QBO", "sparse": False,
                "MetaData": {"CreateTime": "2025-01-01T00:00:00+00:00", "LastUpdatedTime": "2025-01-01T00:00:00+00:00"}}


ACCOUNTS: dict[str, Account] = {a.id: a for a in (
    Account("1", "Sales", "Income", "SalesOfProductIncome", "Revenue"),
    Account("2", "Shipping Income", "Income", "OtherPrimaryIncome", "Revenue"),
    Account("3", "Discounts Given", "Income", "DiscountsRefundsGiven", "Revenue"),
    Account("4", "Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", "Asset"),
    Account("35", "Current Account", "Bank", "Checking", "Asset"),
    Account("36", "Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset"),
    Account("37", "Stripe Clearing", "Bank", "Checking", "Asset"),
)}


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    income_account: str

    def wire(self) -> dict:
        acc = ACCOUNTS[self.income_account]
        return {"Id": self.id, "Name": self.name, "FullyQualifiedName": self.name, "Active": True,
                "Type": "NonInventory", "Taxable": True, "UnitPrice": 0, "TrackQtyOnHand": False,
                "IncomeAccountRef": {"value": acc.id, "name": acc.name}, "SyncToken": "0", "domain": "QBO",
                "sparse": False,
                "MetaData": {"CreateTime": "2025-01-01T00:00:00+00:00", "LastUpdatedTime": "2025-01-01T00:00:00+00:00"}}


ITEMS: dict[str, Item] = {i.id: i for i in (
    Item("1", "Services", "1"),
    Item("11", "Trade goods", "1"),
    Item("12", "Shipping", "2"),
)}


def company_info(realm_id: str) -> dict:
    return {"Id": "1", "CompanyName": "Drapery & Co (Sandbox)", "LegalName": "Drapery & Co Ltd",
            "Country": "GB", "CompanyAddr": {"Line1": "1 Mill Lane", "City": "Bath", "Country": "GBR",
                                             "PostalCode": "BA1 1AA"},
            "FiscalYearStartMonth": "April", "SupportedLanguages": "en", "DefaultTimeZone": "Europe/London",
            "SyncToken": "1", "domain": "QBO", "sparse": False, "realmId": realm_id,
            "NameValue": [{"Name": "CompanyType", "Value": "Limited company"},
                          {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
            "MetaData": {"CreateTime": "2025-01-01T00:00:00+00:00", "LastUpdatedTime": "2025-01-01T00:00:00+00:00"}}


def preferences() -> dict:
    return {"Id": "1", "SyncToken": "0", "domain": "QBO", "sparse": False,
            "CurrencyPrefs": {"HomeCurrency": {"value": HOME_CURRENCY}, "MultiCurrencyEnabled": True},
            "SalesFormsPrefs": {"CustomTxnNumbers": True, "AllowDiscount": True, "AllowShipping": False,
                                "DefaultTerms": {"value": "3"}},
            "OtherPrefs": {"NameValue": [{"Name": "SalesFormsPrefs.WarnDuplicateDocNum", "Value": "true"}]},
            "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": False},
            "MetaData": {"CreateTime": "2025-01-01T00:00:00+00:00", "LastUpdatedTime": "2025-01-01T00:00:00+00:00"}}
