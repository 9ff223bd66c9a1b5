{#- Every movement of processor and marketplace balances (charges, refunds, fees, dispute
    withdrawals and reversals, payouts), in the settlement currency, with the payout that carried it. -#}
{{ union_channels('balance_transactions') }}
