{#- Every payment attempt from every processor (one row per charge / capture / tender). -#}
{{ union_channels('payments') }}
