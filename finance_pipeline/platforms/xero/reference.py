"""Reference data of the emulated Xero organisation: a UK VAT-registered company, base currency GBP.

Shapes follow `GET /Accounts`, `/TaxRates`, `/Currencies` and `/Organisation` (field names as in
Xero's OpenAPI spec).  Only what the emulator validates against is modelled in depth.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

BASE_CURRENCY = "GBP"
ENABLED_CURRENCIES = {"GBP": "British Pound", "EUR": "Euro", "USD": "United States Dollar", "AUD": "Australian Dollar"}
# CurrencyRate (units of the currency per 1 GBP) used when a request gives none; Xero uses its daily rate.
DEFAULT_RATES = {"GBP": Decimal("1.000000"), "EUR": Decimal("1.170000"), "USD": Decimal("1.270000"),
                 "AUD": Decimal("1.930000")}


@dataclass(frozen=True)
class Account:
    code: str
    name: str
    type: str  # Xero account type: REVENUE, OTHERINCOME, BANK, CURRENT, EXPENSE, …
    account_class: str  # ASSET, LIABILITY, EQUITY, REVENUE, EXPENSE
    tax_type: str  # default tax type
    system_account: str = ""  # DEBTORS, CREDITORS, GST, … (system accounts cannot take invoice lines)
    enable_payments: bool = False  # EnablePaymentsToAccount: a non-bank account that can receive payments

    @property
    def account_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-sandbox-account-{self.code}"))

    @property
    def usable_on_invoice_lines(self) -> bool:
        return self.type != "BANK" and not self.system_account

    def wire(self) -> dict:
        out = {"AccountID": self.account_id, "Code": self.code, "Name": self.name, "Status": "ACTIVE",
               "Type": self.type, "TaxType": self.tax_type, "Class": self.account_class,
               "EnablePaymentsToAccount": self.type == "BANK" or self.enable_payments, "ShowInExpenseClaims": False,
               "ReportingCode": "", "HasAttachments": False, "AddToWatchlist": False,
               "UpdatedDateUTC": "/Date(1735689600000+0000)/"}
        if self.type == "BANK":
            out.update({"BankAccountNumber": "20304012345678", "BankAccountType": "BANK", "CurrencyCode": "GBP"})
        if self.system_account:
            out["SystemAccount"] = self.system_account
        return out


ACCOUNTS: dict[str, Account] = {a.code: a for a in (
    Account("090", "Business Bank Account", "BANK", "ASSET", "NONE"),
    Account("091", "Business Savings Account", "BANK", "ASSET", "NONE"),
    Account("200", "Sales", "REVENUE", "REVENUE", "OUTPUT2"),
    Account("260", "Other Revenue", "REVENUE", "REVENUE", "OUTPUT2"),
    Account("270", "Interest Income", "OTHERINCOME", "REVENUE", "NONE"),
    Account("310", "Cost of Goods Sold", "DIRECTCOSTS", "EXPENSE", "INPUT2"),
    Account("400", "Advertising", "OVERHEADS", "EXPENSE", "INPUT2"),
    Account("404", "Bank Fees", "OVERHEADS", "EXPENSE", "NONE"),
    Account("429", "General Expenses", "OVERHEADS", "EXPENSE", "INPUT2"),
    Account("610", "Accounts Receivable", "CURRENT", "ASSET", "NONE", "DEBTORS"),
    Account("630", "Inventory", "INVENTORY", "ASSET", "NONE"),
    Account("800", "Accounts Payable", "CURRLIAB", "LIABILITY", "NONE", "CREDITORS"),
    Account("820", "VAT", "CURRLIAB", "LIABILITY", "NONE", "GST"),
    Account("825", "Sales Tax Collected (OSS, US, AU)", "CURRLIAB", "LIABILITY", "NONE"),
    # gift cards sold and not yet spent (UK multi-purpose vouchers: no VAT until spent); the
    # publisher's XERO_GIFT_CARD_ACCOUNT defaults to this code
    Account("845", "Gift Card Liability", "CURRLIAB", "LIABILITY", "NONE"),
    Account("835", "Payment Processor Clearing", "CURRENT", "ASSET", "NONE", enable_payments=True),
    Account("970", "Owner A Funds Introduced", "EQUITY", "EQUITY", "NONE"),
)}


@dataclass(frozen=True)
class TaxRate:
    tax_type: str
    name: str
    rate: Decimal  # percent
    report_tax_type: str
    revenue: bool  # usable on sales (revenue) lines
    expenses: bool

    @property
    def fraction(self) -> Decimal:
        return self.rate / Decimal(100)

    def wire(self) -> dict:
        return {"Name": self.name, "TaxType": self.tax_type, "ReportTaxType": self.report_tax_type,
                "CanApplyToAssets": self.expenses, "CanApplyToEquity": False,
                "CanApplyToExpenses": self.expenses, "CanApplyToLiabilities": False,
                "CanApplyToRevenue": self.revenue, "DisplayTaxRate": self.rate, "EffectiveRate": self.rate,
                "Status": "ACTIVE",
                "TaxComponents": [{"Name": "VAT", "Rate": self.rate, "IsCompound": False,
                                   "IsNonRecoverable": False}]}


TAX_RATES: dict[str, TaxRate] = {t.tax_type: t for t in (
    TaxRate("OUTPUT2", "20% (VAT on Income)", Decimal("20.0000"), "OUTPUT", True, False),
    TaxRate("RROUTPUT", "5% (VAT on Income)", Decimal("5.0000"), "OUTPUT", True, False),
    TaxRate("ZERORATEDOUTPUT", "Zero Rated Income", Decimal("0.0000"), "OUTPUT", True, False),
    TaxRate("EXEMPTOUTPUT", "Exempt Income", Decimal("0.0000"), "EXEMPTOUTPUT", True, False),
    TaxRate("INPUT2", "20% (VAT on Expenses)", Decimal("20.0000"), "INPUT", False, True),
    TaxRate("RRINPUT", "5% (VAT on Expenses)", Decimal("5.0000"), "INPUT", False, True),
    TaxRate("ZERORATEDINPUT", "Zero Rated Expenses", Decimal("0.0000"), "INPUT", False, True),
    TaxRate("EXEMPTINPUT", "Exempt Expenses", Decimal("0.0000"), "EXEMPTINPUT", False, True),
    TaxRate("NONE", "No VAT", Decimal("0.0000"), "NONE", True, True),
)}


def organisation(tenant_id: str) -> dict:
    return {
        "OrganisationID": tenant_id, "APIKey": "", "Name": "Drapery & Co (Sandbox)",
        "LegalName": "Drapery & Co Ltd", "PaysTax": True, "Version": "UK", "OrganisationType": "COMPANY",
        "BaseCurrency": BASE_CURRENCY, "CountryCode": "GB", "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE", "RegistrationNumber": "09876543", "TaxNumber": "GB123456789",
        "FinancialYearEndDay": 31, "FinancialYearEndMonth": 3, "SalesTaxBasis": "ACCRUALS",
        "SalesTaxPeriod": "QUARTERLY1", "DefaultSalesTax": "Tax Exclusive", "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": "/Date(1704067200000+0000)/", "OrganisationEntityType": "COMPANY",
        "Timezone": "GMTSTANDARDTIME", "ShortCode": "!sBxQ1", "Class": "STANDARD", "Edition": "BUSINESS",
        "LineOfBusiness": "Curtain and soft furnishings wholesale", "Addresses": [], "Phones": [],
        "ExternalLinks": [], "PaymentTerms": {"Sales": {"Day": 30, "Type": "DAYSAFTERBILLDATE"}},
    }


def currencies() -> list[dict]:
    return [{"Code": code, "Description": name} for code, name in ENABLED_CURRENCIES.items()]
