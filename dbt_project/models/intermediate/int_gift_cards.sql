{#- Gift cards sold, every channel that sells them (scenario S12): one row per gift card line with
    its value (a liability until spent, never revenue). -#}
{{ union_channels('gift_cards') }}
