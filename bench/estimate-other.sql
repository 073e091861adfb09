-- A schema `passerelle estimate` was not tuned on (BENCHMARKS.md, "Estimating"): orders with two
-- secondary indexes, and events of jsonb with a foreign key to them; about 90 MB with indexes.
--   psql -d bench_other -f bench/estimate-other.sql   (as the migration's user, in a database it owns)
drop schema if exists shop cascade;
create schema shop;
create table shop.orders (
  id bigint primary key,
  customer_id integer not null,
  placed_at timestamptz not null,
  amount numeric(12, 2) not null,
  status text not null,
  note text
);
create index orders_customer on shop.orders (customer_id);
create index orders_placed on shop.orders (placed_at);
create table shop.events (
  id bigint primary key,
  order_id bigint not null references shop.orders,
  payload jsonb not null
);
insert into shop.orders
select i, i % 50000, timestamptz '2024-01-01' + i * interval '71 s', (i % 100000) / 100.0,
       (array['new', 'paid', 'shipped', 'returned'])[1 + i % 4], md5(i::text) || ' ' || repeat('n', i % 40)
from generate_series(1, 400000) i;
insert into shop.events
select i, 1 + i % 400000,
       jsonb_build_object('kind', (array['view', 'cart', 'pay'])[1 + i % 3], 'at', i, 'tags',
                          jsonb_build_array(md5(i::text), i % 7), 'detail', repeat('d', i % 60))
from generate_series(1, 200000) i;
vacuum analyze shop.orders, shop.events;
