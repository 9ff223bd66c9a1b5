{#- One row per order line, every channel; fabric also in metres (scenario S4). -#}
select
    l.*,
    o.is_void
from {{ ref('int_order_lines') }} as l
join {{ ref('int_orders') }} as o using (channel, order_id)
