{#- Every payout from every processor and marketplace to the bank. -#}
{{ union_channels('payouts') }}
