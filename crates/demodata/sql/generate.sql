-- The deterministic generator of the demo bookings data (issue 6), run inside PostgreSQL after the
-- pre-data part of schema.sql and before its post-data part.
--
-- Parameters are two settings of the session: `demodata.scale` (tiny, small, medium or big) and
-- `demodata.seed` (a bigint). With psql:
--   PGOPTIONS='-c demodata.scale=small -c demodata.seed=1' psql -f generate.sql
-- Every random choice is a hash of a row key and the seed (hashint8extended), never random(), so the
-- content depends on the seed alone, whatever the plans, the parallelism or the order of rows.
-- Work tables live in the scratch schema `bookings_gen`, unlogged, and are dropped at the end.
-- The loader runs the file one `-- step:` at a time to report progress; each step is plain SQL.
--
-- The shape, and why it hits the published counts exactly:
-- * flights: a seeded network of 355 airport pairs flown both ways (710 flight numbers) on fixed
--   weekdays, whose weekly number of flights does not depend on the seed; the first N flights from
--   the start of the booking period are kept.
-- * bookings: B bookings of 1 + k tickets, the T - B extra tickets spread over bookings by hash.
-- * ticket_flights: every ticket of a booking flies the booking's itinerary (a one-way or round trip
--   of 1 to 6 legs walked over the network). Itineraries are drawn slightly longer than needed on
--   average, then the exact surplus is removed as the last leg of single-ticket bookings.
-- * boarding_passes: every ticket flight of a departed flight that holds a seat is eligible, and the
--   exact surplus over the target is chosen as no-shows.

-- step: parameters
-- Session settings for bulk work; the last step resets them. Day arithmetic is done in UTC, so the
-- content does not depend on the client's time zone. JIT compiles for longer than these queries run.
set client_min_messages = warning;
set timezone = 'UTC';
set jit = off;
set work_mem = '256MB';
set maintenance_work_mem = '512MB';
drop schema if exists bookings_gen cascade;
create schema bookings_gen;

-- A 63-bit hash of a key under a seed and a salt naming the purpose, and the same as a uniform
-- number in [0, 1). Both are inlined by the planner.
create function bookings_gen.h(k bigint, seed bigint, salt bigint) returns bigint
    language sql immutable parallel safe
as $$ select hashint8extended(k, hashint8extended(salt, seed)) & 9223372036854775807 $$;

create function bookings_gen.u(k bigint, seed bigint, salt bigint) returns double precision
    language sql immutable parallel safe
as $$ select (hashint8extended(k, hashint8extended(salt, seed)) & 4503599627370495)::double precision / 4503599627370496.0 $$;

-- Published row counts per scale, and the booking period: the original demo holds one month of
-- bookings (small), three months (medium) or a year (big) up to bookings.now().
create unlogged table bookings_gen.param as
select v.*,
       current_setting('demodata.seed')::bigint as seed,
       bookings.now() as now_ts,
       (bookings.now() at time zone 'UTC')::date - v.booking_days as first_day
from (values
    ('tiny', 30, 33121, 26279, 36673, 104573, 57969),
    ('small', 30, 33121, 262788, 366733, 1045726, 579686),
    ('medium', 90, 65664, 593433, 829071, 2360335, 1894295),
    ('big', 365, 214867, 2111110, 2949857, 8391852, 7925812)
) v(scale, booking_days, n_flights, n_bookings, n_tickets, n_ticket_flights, n_boarding_passes)
where v.scale = current_setting('demodata.scale');
analyze bookings_gen.param;

do $$
begin
    if (select count(*) from bookings_gen.param) <> 1 then
        raise exception 'unknown scale "%": expected tiny, small, medium or big', current_setting('demodata.scale');
    end if;
end
$$;

-- step: aircrafts_data
insert into bookings.aircrafts_data (aircraft_code, model, range) values
    ('773', '{"en": "Boeing 777-300", "ru": "Боинг 777-300"}', 11100),
    ('763', '{"en": "Boeing 767-300", "ru": "Боинг 767-300"}', 7900),
    ('SU9', '{"en": "Sukhoi Superjet-100", "ru": "Сухой Суперджет-100"}', 3000),
    ('320', '{"en": "Airbus A320-200", "ru": "Аэробус A320-200"}', 5700),
    ('321', '{"en": "Airbus A321-200", "ru": "Аэробус A321-200"}', 5600),
    ('319', '{"en": "Airbus A319-100", "ru": "Аэробус A319-100"}', 6700),
    ('733', '{"en": "Boeing 737-300", "ru": "Боинг 737-300"}', 4200),
    ('CN1', '{"en": "Cessna 208 Caravan", "ru": "Сессна 208 Караван"}', 1200),
    ('CR2', '{"en": "Bombardier CRJ-200", "ru": "Бомбардье CRJ-200"}', 2700);

-- The distance band each aircraft is scheduled on; a band never exceeds the aircraft's range.
create unlogged table bookings_gen.aircraft_band (aircraft_code, min_km, max_km) as values
    ('773', 3000, 10000), ('763', 2500, 7500), ('SU9', 300, 2700), ('320', 800, 4500),
    ('321', 800, 4500), ('319', 800, 6000), ('733', 400, 3800), ('CN1', 0, 450), ('CR2', 0, 1600);
analyze bookings_gen.aircraft_band;

-- step: seats
-- Cabin layouts: each class fills rows from first_row with the given seat letters; the last row of
-- a class may be partial. The totals per aircraft are the original ones (1,339 seats in all).
create unlogged table bookings_gen.cabin (aircraft_code, fare_conditions, first_row, letters, n_seats) as values
    ('773', 'Business', 2, 'ACDGHK', 30), ('773', 'Comfort', 7, 'ACDEFGHK', 48), ('773', 'Economy', 13, 'ABCDEFGHK', 324),
    ('763', 'Business', 1, 'ACDGHK', 30), ('763', 'Economy', 6, 'ABCDEFG', 192),
    ('SU9', 'Business', 1, 'ACDF', 12), ('SU9', 'Economy', 4, 'ABCDEF', 85),
    ('320', 'Business', 1, 'ACDF', 20), ('320', 'Economy', 6, 'ABCDEF', 120),
    ('321', 'Business', 1, 'ACDF', 28), ('321', 'Economy', 8, 'ABCDEF', 142),
    ('319', 'Business', 1, 'ACDF', 20), ('319', 'Economy', 6, 'ABCDEF', 96),
    ('733', 'Business', 1, 'ACDF', 12), ('733', 'Economy', 4, 'ABCDEF', 118),
    ('CN1', 'Economy', 1, 'AB', 12),
    ('CR2', 'Economy', 1, 'ABCD', 50);
analyze bookings_gen.cabin;

-- Seats numbered 0..capacity-1 per aircraft, so that a flight can hand out seats by index.
create unlogged table bookings_gen.seat as
select c.aircraft_code,
       (row_number() over (partition by c.aircraft_code order by c.first_row, i) - 1)::int as seat_idx,
       (c.first_row + i / length(c.letters))::text || substr(c.letters, i % length(c.letters) + 1, 1) as seat_no,
       c.fare_conditions
from bookings_gen.cabin c, generate_series(0, c.n_seats - 1) i;
analyze bookings_gen.seat;

create unlogged table bookings_gen.aircraft as
select aircraft_code, count(*)::int as capacity from bookings_gen.seat group by aircraft_code;
analyze bookings_gen.aircraft;

insert into bookings.seats (aircraft_code, seat_no, fare_conditions)
select aircraft_code, seat_no, fare_conditions from bookings_gen.seat order by aircraft_code, seat_idx;

-- step: airports_data
-- 104 airports. Tier 1 are the Moscow hubs, tier 2 regional hubs; the tier shapes the network.
create unlogged table bookings_gen.airport (code, name_en, name_ru, city_en, city_ru, lon, lat, tz, tier) as values
    ('SVO', 'Sheremetyevo', 'Шереметьево', 'Moscow', 'Москва', 37.4146, 55.9726, 'Europe/Moscow', 1),
    ('DME', 'Domodedovo', 'Домодедово', 'Moscow', 'Москва', 37.9063, 55.4088, 'Europe/Moscow', 1),
    ('VKO', 'Vnukovo', 'Внуково', 'Moscow', 'Москва', 37.2615, 55.5915, 'Europe/Moscow', 1),
    ('LED', 'Pulkovo', 'Пулково', 'Saint Petersburg', 'Санкт-Петербург', 30.2625, 59.8003, 'Europe/Moscow', 2),
    ('KZN', 'Kazan', 'Казань', 'Kazan', 'Казань', 49.2787, 55.6062, 'Europe/Moscow', 2),
    ('SVX', 'Koltsovo', 'Кольцово', 'Yekaterinburg', 'Екатеринбург', 60.8027, 56.7431, 'Asia/Yekaterinburg', 2),
    ('OVB', 'Tolmachevo', 'Толмачёво', 'Novosibirsk', 'Новосибирск', 82.6507, 55.0126, 'Asia/Novosibirsk', 2),
    ('KJA', 'Yemelyanovo', 'Емельяново', 'Krasnoyarsk', 'Красноярск', 92.4933, 56.1729, 'Asia/Krasnoyarsk', 2),
    ('AER', 'Sochi', 'Сочи', 'Sochi', 'Сочи', 39.9566, 43.4499, 'Europe/Moscow', 2),
    ('KRR', 'Pashkovsky', 'Пашковский', 'Krasnodar', 'Краснодар', 39.1705, 45.0347, 'Europe/Moscow', 2),
    ('ROV', 'Rostov-on-Don', 'Ростов-на-Дону', 'Rostov-on-Don', 'Ростов-на-Дону', 39.8181, 47.2582, 'Europe/Moscow', 2),
    ('UFA', 'Ufa', 'Уфа', 'Ufa', 'Уфа', 55.8744, 54.5575, 'Asia/Yekaterinburg', 2),
    ('KUF', 'Kurumoch', 'Курумоч', 'Samara', 'Самара', 50.1643, 53.5049, 'Europe/Samara', 2),
    ('PEE', 'Bolshoye Savino', 'Большое Савино', 'Perm', 'Пермь', 56.0212, 57.9145, 'Asia/Yekaterinburg', 3),
    ('CEK', 'Balandino', 'Баландино', 'Chelyabinsk', 'Челябинск', 61.5033, 55.3058, 'Asia/Yekaterinburg', 3),
    ('OMS', 'Tsentralny', 'Центральный', 'Omsk', 'Омск', 73.3105, 54.9670, 'Asia/Omsk', 3),
    ('TJM', 'Roshchino', 'Рощино', 'Tyumen', 'Тюмень', 65.3243, 57.1896, 'Asia/Yekaterinburg', 3),
    ('IKT', 'Irkutsk', 'Иркутск', 'Irkutsk', 'Иркутск', 104.3890, 52.2680, 'Asia/Irkutsk', 2),
    ('VVO', 'Knevichi', 'Кневичи', 'Vladivostok', 'Владивосток', 132.1480, 43.3990, 'Asia/Vladivostok', 2),
    ('KHV', 'Khabarovsk-Novy', 'Хабаровск-Новый', 'Khabarovsk', 'Хабаровск', 135.1880, 48.5280, 'Asia/Vladivostok', 2),
    ('YKS', 'Yakutsk', 'Якутск', 'Yakutsk', 'Якутск', 129.7710, 62.0933, 'Asia/Yakutsk', 3),
    ('MRV', 'Mineralnye Vody', 'Минеральные Воды', 'Mineralnye Vody', 'Минеральные Воды', 43.0819, 44.2251, 'Europe/Moscow', 3),
    ('GOJ', 'Strigino', 'Стригино', 'Nizhny Novgorod', 'Нижний Новгород', 43.7840, 56.2301, 'Europe/Moscow', 3),
    ('VOG', 'Gumrak', 'Гумрак', 'Volgograd', 'Волгоград', 44.3455, 48.7825, 'Europe/Volgograd', 3),
    ('AAQ', 'Vityazevo', 'Витязево', 'Anapa', 'Анапа', 37.3473, 45.0021, 'Europe/Moscow', 3),
    ('MMK', 'Murmansk', 'Мурманск', 'Murmansk', 'Мурманск', 32.7508, 68.7817, 'Europe/Moscow', 3),
    ('ARH', 'Talagi', 'Талаги', 'Arkhangelsk', 'Архангельск', 40.7167, 64.6003, 'Europe/Moscow', 3),
    ('KGD', 'Khrabrovo', 'Храброво', 'Kaliningrad', 'Калининград', 20.5926, 54.8900, 'Europe/Kaliningrad', 3),
    ('NUX', 'Novy Urengoy', 'Новый Уренгой', 'Novy Urengoy', 'Новый Уренгой', 76.5203, 66.0694, 'Asia/Yekaterinburg', 3),
    ('SGC', 'Surgut', 'Сургут', 'Surgut', 'Сургут', 73.4018, 61.3437, 'Asia/Yekaterinburg', 3),
    ('NJC', 'Nizhnevartovsk', 'Нижневартовск', 'Nizhnevartovsk', 'Нижневартовск', 76.4836, 60.9493, 'Asia/Yekaterinburg', 3),
    ('HMA', 'Khanty-Mansiysk', 'Ханты-Мансийск', 'Khanty-Mansiysk', 'Ханты-Мансийск', 69.0861, 61.0285, 'Asia/Yekaterinburg', 3),
    ('TOF', 'Bogashevo', 'Богашёво', 'Tomsk', 'Томск', 85.2083, 56.3803, 'Asia/Tomsk', 3),
    ('BAX', 'Barnaul', 'Барнаул', 'Barnaul', 'Барнаул', 83.5385, 53.3638, 'Asia/Barnaul', 3),
    ('KEJ', 'Kemerovo', 'Кемерово', 'Kemerovo', 'Кемерово', 86.1072, 55.2701, 'Asia/Novokuznetsk', 3),
    ('NOZ', 'Spichenkovo', 'Спиченково', 'Novokuznetsk', 'Новокузнецк', 86.8772, 53.8114, 'Asia/Novokuznetsk', 3),
    ('ABA', 'Abakan', 'Абакан', 'Abakan', 'Абакан', 91.3850, 53.7400, 'Asia/Krasnoyarsk', 3),
    ('UUD', 'Baikal', 'Байкал', 'Ulan-Ude', 'Улан-Удэ', 107.4380, 51.8078, 'Asia/Irkutsk', 3),
    ('HTA', 'Kadala', 'Кадала', 'Chita', 'Чита', 113.3060, 52.0263, 'Asia/Chita', 3),
    ('BQS', 'Ignatyevo', 'Игнатьево', 'Blagoveshchensk', 'Благовещенск', 127.4120, 50.4254, 'Asia/Yakutsk', 3),
    ('UUS', 'Khomutovo', 'Хомутово', 'Yuzhno-Sakhalinsk', 'Южно-Сахалинск', 142.7180, 46.8887, 'Asia/Sakhalin', 3),
    ('PKC', 'Yelizovo', 'Елизово', 'Petropavlovsk-Kamchatsky', 'Петропавловск-Камчатский', 158.4540, 53.1679, 'Asia/Kamchatka', 3),
    ('GDX', 'Sokol', 'Сокол', 'Magadan', 'Магадан', 150.7200, 59.9110, 'Asia/Magadan', 3),
    ('DYR', 'Ugolny', 'Угольный', 'Anadyr', 'Анадырь', 177.7410, 64.7349, 'Asia/Anadyr', 3),
    ('NSK', 'Alykel', 'Алыкель', 'Norilsk', 'Норильск', 87.3322, 69.3111, 'Asia/Krasnoyarsk', 3),
    ('MCX', 'Uytash', 'Уйташ', 'Makhachkala', 'Махачкала', 47.6523, 42.8168, 'Europe/Moscow', 3),
    ('GRV', 'Grozny', 'Грозный', 'Grozny', 'Грозный', 45.7841, 43.2981, 'Europe/Moscow', 3),
    ('NAL', 'Nalchik', 'Нальчик', 'Nalchik', 'Нальчик', 43.6366, 43.5129, 'Europe/Moscow', 3),
    ('OGZ', 'Beslan', 'Беслан', 'Vladikavkaz', 'Владикавказ', 44.6066, 43.2051, 'Europe/Moscow', 3),
    ('STW', 'Shpakovskoye', 'Шпаковское', 'Stavropol', 'Ставрополь', 42.1128, 45.1092, 'Europe/Moscow', 3),
    ('ASF', 'Narimanovo', 'Нариманово', 'Astrakhan', 'Астрахань', 48.0060, 46.2833, 'Europe/Astrakhan', 3),
    ('ESL', 'Elista', 'Элиста', 'Elista', 'Элиста', 44.3309, 46.3739, 'Europe/Moscow', 3),
    ('SKX', 'Saransk', 'Саранск', 'Saransk', 'Саранск', 45.2123, 54.1251, 'Europe/Moscow', 3),
    ('PEZ', 'Penza', 'Пенза', 'Penza', 'Пенза', 45.0210, 53.1106, 'Europe/Moscow', 3),
    ('ULV', 'Baratayevka', 'Баратаевка', 'Ulyanovsk', 'Ульяновск', 48.2267, 54.2683, 'Europe/Ulyanovsk', 3),
    ('ULY', 'Vostochny', 'Восточный', 'Ulyanovsk', 'Ульяновск', 48.8027, 54.4010, 'Europe/Ulyanovsk', 3),
    ('REN', 'Tsentralny', 'Центральный', 'Orenburg', 'Оренбург', 55.4567, 51.7958, 'Asia/Yekaterinburg', 3),
    ('OSW', 'Orsk', 'Орск', 'Orsk', 'Орск', 58.5956, 51.0725, 'Asia/Yekaterinburg', 3),
    ('MQF', 'Magnitogorsk', 'Магнитогорск', 'Magnitogorsk', 'Магнитогорск', 58.7557, 53.3931, 'Asia/Yekaterinburg', 3),
    ('KGP', 'Kogalym', 'Когалым', 'Kogalym', 'Когалым', 74.5338, 62.1904, 'Asia/Yekaterinburg', 3),
    ('NYM', 'Nadym', 'Надым', 'Nadym', 'Надым', 72.6989, 65.4809, 'Asia/Yekaterinburg', 3),
    ('SLY', 'Salekhard', 'Салехард', 'Salekhard', 'Салехард', 66.6110, 66.5908, 'Asia/Yekaterinburg', 3),
    ('USK', 'Usinsk', 'Усинск', 'Usinsk', 'Усинск', 57.3672, 66.0047, 'Europe/Moscow', 3),
    ('UCT', 'Ukhta', 'Ухта', 'Ukhta', 'Ухта', 53.8047, 63.5669, 'Europe/Moscow', 3),
    ('SCW', 'Syktyvkar', 'Сыктывкар', 'Syktyvkar', 'Сыктывкар', 50.8451, 61.6470, 'Europe/Moscow', 3),
    ('KVX', 'Pobedilovo', 'Победилово', 'Kirov', 'Киров', 49.3483, 58.5033, 'Europe/Kirov', 3),
    ('IJK', 'Izhevsk', 'Ижевск', 'Izhevsk', 'Ижевск', 53.4575, 56.8281, 'Europe/Samara', 3),
    ('CSY', 'Cheboksary', 'Чебоксары', 'Cheboksary', 'Чебоксары', 47.3473, 56.0903, 'Europe/Moscow', 3),
    ('JOK', 'Yoshkar-Ola', 'Йошкар-Ола', 'Yoshkar-Ola', 'Йошкар-Ола', 47.9047, 56.7006, 'Europe/Moscow', 3),
    ('NBC', 'Begishevo', 'Бегишево', 'Nizhnekamsk', 'Нижнекамск', 52.0925, 55.5647, 'Europe/Moscow', 3),
    ('EGO', 'Belgorod', 'Белгород', 'Belgorod', 'Белгород', 36.5901, 50.6438, 'Europe/Moscow', 3),
    ('VOZ', 'Chertovitskoye', 'Чертовицкое', 'Voronezh', 'Воронеж', 39.2296, 51.8142, 'Europe/Moscow', 3),
    ('LPK', 'Lipetsk', 'Липецк', 'Lipetsk', 'Липецк', 39.5378, 52.7028, 'Europe/Moscow', 3),
    ('KRO', 'Kurgan', 'Курган', 'Kurgan', 'Курган', 65.4156, 55.4753, 'Asia/Yekaterinburg', 3),
    ('URS', 'Vostochny', 'Восточный', 'Kursk', 'Курск', 36.2956, 51.7506, 'Europe/Moscow', 3),
    ('TBW', 'Donskoye', 'Донское', 'Tambov', 'Тамбов', 41.4828, 52.8061, 'Europe/Moscow', 3),
    ('BZK', 'Bryansk', 'Брянск', 'Bryansk', 'Брянск', 34.1764, 53.2142, 'Europe/Moscow', 3),
    ('KLF', 'Grabtsevo', 'Грабцево', 'Kaluga', 'Калуга', 36.3667, 54.5500, 'Europe/Moscow', 3),
    ('IAR', 'Tunoshna', 'Туношна', 'Yaroslavl', 'Ярославль', 40.1574, 57.5607, 'Europe/Moscow', 3),
    ('CEE', 'Cherepovets', 'Череповец', 'Cherepovets', 'Череповец', 38.0158, 59.2736, 'Europe/Moscow', 3),
    ('PES', 'Besovets', 'Бесовец', 'Petrozavodsk', 'Петрозаводск', 34.1547, 61.8852, 'Europe/Moscow', 3),
    ('PKV', 'Pskov', 'Псков', 'Pskov', 'Псков', 28.3956, 57.7839, 'Europe/Moscow', 3),
    ('VKT', 'Vorkuta', 'Воркута', 'Vorkuta', 'Воркута', 63.9931, 67.4886, 'Europe/Moscow', 3),
    ('NNM', 'Naryan-Mar', 'Нарьян-Мар', 'Naryan-Mar', 'Нарьян-Мар', 53.1219, 67.6392, 'Europe/Moscow', 3),
    ('KSZ', 'Kotlas', 'Котлас', 'Kotlas', 'Котлас', 46.6975, 61.2358, 'Europe/Moscow', 3),
    ('IWA', 'Yuzhny', 'Южный', 'Ivanovo', 'Иваново', 40.9408, 56.9394, 'Europe/Moscow', 3),
    ('RTW', 'Tsentralny', 'Центральный', 'Saratov', 'Саратов', 46.0467, 51.5650, 'Europe/Saratov', 3),
    ('BTK', 'Bratsk', 'Братск', 'Bratsk', 'Братск', 101.6980, 56.3706, 'Asia/Irkutsk', 3),
    ('UIK', 'Ust-Ilimsk', 'Усть-Илимск', 'Ust-Ilimsk', 'Усть-Илимск', 102.5650, 58.1361, 'Asia/Irkutsk', 3),
    ('KXK', 'Khurba', 'Хурба', 'Komsomolsk-on-Amur', 'Комсомольск-на-Амуре', 136.9340, 50.4090, 'Asia/Vladivostok', 3),
    ('MJZ', 'Mirny', 'Мирный', 'Mirny', 'Мирный', 114.0390, 62.5347, 'Asia/Yakutsk', 3),
    ('NER', 'Chulman', 'Чульман', 'Neryungri', 'Нерюнгри', 124.9140, 56.9139, 'Asia/Yakutsk', 3),
    ('CYX', 'Chersky', 'Черский', 'Chersky', 'Черский', 161.3380, 68.7406, 'Asia/Srednekolymsk', 3),
    ('IKS', 'Tiksi', 'Тикси', 'Tiksi', 'Тикси', 128.9030, 71.6977, 'Asia/Yakutsk', 3),
    ('EYK', 'Beloyarsky', 'Белоярский', 'Beloyarsky', 'Белоярский', 66.6986, 63.6869, 'Asia/Yekaterinburg', 3),
    ('SWT', 'Strezhevoy', 'Стрежевой', 'Strezhevoy', 'Стрежевой', 77.6600, 60.7094, 'Asia/Tomsk', 3),
    ('NOJ', 'Noyabrsk', 'Ноябрьск', 'Noyabrsk', 'Ноябрьск', 75.2700, 63.1833, 'Asia/Yekaterinburg', 3),
    ('RGK', 'Gorno-Altaysk', 'Горно-Алтайск', 'Gorno-Altaysk', 'Горно-Алтайск', 85.8333, 51.9667, 'Asia/Barnaul', 3),
    ('KYZ', 'Kyzyl', 'Кызыл', 'Kyzyl', 'Кызыл', 94.4006, 51.6694, 'Asia/Krasnoyarsk', 3),
    ('GDZ', 'Gelendzhik', 'Геленджик', 'Gelendzhik', 'Геленджик', 38.0125, 44.5821, 'Europe/Moscow', 3),
    ('NFG', 'Nefteyugansk', 'Нефтеюганск', 'Nefteyugansk', 'Нефтеюганск', 72.6500, 61.1083, 'Asia/Yekaterinburg', 3),
    ('OVS', 'Sovetsky', 'Советский', 'Sovetsky', 'Советский', 63.6019, 61.3266, 'Asia/Yekaterinburg', 3),
    ('URJ', 'Uray', 'Урай', 'Uray', 'Урай', 64.8267, 60.1033, 'Asia/Yekaterinburg', 3),
    ('PYJ', 'Polyarny', 'Полярный', 'Udachny', 'Удачный', 112.0300, 66.4004, 'Asia/Yakutsk', 3);
analyze bookings_gen.airport;

insert into bookings.airports_data (airport_code, airport_name, city, coordinates, timezone)
select code,
       jsonb_build_object('en', name_en, 'ru', name_ru),
       jsonb_build_object('en', city_en, 'ru', city_ru),
       point(lon, lat),
       tz
from bookings_gen.airport
order by code;

-- step: flights
-- The network: 355 airport pairs. Every non-Moscow airport is tied to one Moscow hub; the other
-- pairs are the best scored, short pairs and hub pairs first, with a seeded jitter.
create unlogged table bookings_gen.pair as
with a as (
    select row_number() over (order by code) as ord, * from bookings_gen.airport
), moscow as (
    select code, row_number() over (order by code) - 1 as i from bookings_gen.airport where tier = 1
), tied as (
    select a.code, m.code as hub
    from a cross join bookings_gen.param p
    join moscow m on m.i = bookings_gen.h(a.ord, p.seed, 1) % 3
    where a.tier > 1
), d as (
    select x.code as a_code, y.code as b_code, x.ord * 1000 + y.ord as pair_key,
           (array[8, 3, 1])[x.tier] * (array[8, 3, 1])[y.tier] as weight,
           2 * 6371 * asin(sqrt(power(sin(radians(y.lat - x.lat) / 2), 2)
               + cos(radians(x.lat)) * cos(radians(y.lat)) * power(sin(radians(y.lon - x.lon) / 2), 2))) as km
    from a x join a y on x.code < y.code
), scored as (
    select d.*,
           case when t.code is not null then -1.0
                else d.km / d.weight * (0.25 + bookings_gen.u(d.pair_key, p.seed, 2)) end as score
    from d cross join bookings_gen.param p
    left join tied t on (t.code = d.a_code and t.hub = d.b_code) or (t.code = d.b_code and t.hub = d.a_code)
    where d.km >= 100
)
select (row_number() over (order by score, a_code, b_code) - 1)::int as pair_idx, a_code, b_code, pair_key, km
from scored
order by score, a_code, b_code
limit 355;
analyze bookings_gen.pair;

-- The weekly frequency of a pair follows a fixed pattern over its seeded rank, so the number of
-- flights per week, hence the span of the schedule, is the same for every seed.
create unlogged table bookings_gen.route as
with band as (
    select row_number() over (order by aircraft_code) as ord, * from bookings_gen.aircraft_band
), pair as (
    select pr.*,
           (array[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 1, 2, 2, 3, 3, 3, 4, 5])
               [(row_number() over (order by bookings_gen.h(pr.pair_idx, p.seed, 4)) - 1) % 20 + 1] as n_days,
           bookings_gen.h(pr.pair_idx, p.seed, 5) as hd,
           (select b.aircraft_code from band b
            where pr.km between b.min_km and b.max_km
            order by bookings_gen.h(pr.pair_idx * 16 + b.ord, p.seed, 6)
            limit 1) as aircraft_code
    from bookings_gen.pair pr cross join bookings_gen.param p
)
select pair.pair_idx * 2 + dir as route_id,
       'PG' || lpad(((pair.pair_idx * 2 + dir) * (1 + bookings_gen.h(0, p.seed, 7) % 9972) % 9973 + 1)::text, 4, '0') as flight_no,
       case dir when 0 then pair.a_code else pair.b_code end as dep_airport,
       case dir when 0 then pair.b_code else pair.a_code end as arr_airport,
       pair.km,
       pair.aircraft_code,
       array(select (pair.hd % 7 + j * (1 + pair.hd / 7 % 6)) % 7 + 1
             from generate_series(0, pair.n_days - 1) j order by 1)::int[] as days,
       time '06:00' + (bookings_gen.h(pair.pair_idx * 2 + dir, p.seed, 8) % 205) * interval '5 minutes' as dep_local,
       round((pair.km / 800.0 * 60 + 25) / 5) * 5 * interval '1 minute' as duration,
       round((pair.km * 4 + 2500) / 100) * 100 as economy_price
from pair cross join bookings_gen.param p cross join (values (0), (1)) v(dir);
analyze bookings_gen.route;

-- Candidate flights: every operating local day of every route from the first day of the booking
-- period on; the first n_flights in time are the schedule, which lands about a month after now().
create unlogged table bookings_gen.flight as
with cand as (
    select r.route_id, (d::date + r.dep_local) at time zone ap.tz as sched_dep
    from bookings_gen.route r
    join bookings_gen.airport ap on ap.code = r.dep_airport
    cross join bookings_gen.param p
    cross join generate_series(p.first_day, p.first_day + p.booking_days + 90, interval '1 day') d
    where extract(isodow from d::date)::int = any (r.days)
), kept as (
    select (row_number() over (order by c.sched_dep, c.route_id))::int as flight_id, c.*
    from cand c
    order by c.sched_dep, c.route_id
    limit (select n_flights from bookings_gen.param)
), timed as (
    select k.*, r.flight_no, r.dep_airport, r.arr_airport, r.aircraft_code, r.economy_price,
           k.sched_dep + r.duration as sched_arr,
           -- Departure delay: mostly minutes, sometimes an hour, rarely several.
           case when bookings_gen.u(k.flight_id, p.seed, 9) < 0.80 then floor(bookings_gen.u(k.flight_id, p.seed, 10) * 6)
                when bookings_gen.u(k.flight_id, p.seed, 9) < 0.96 then 5 + floor(bookings_gen.u(k.flight_id, p.seed, 10) * 55)
                else 60 + floor(bookings_gen.u(k.flight_id, p.seed, 10) * 240) end * interval '1 minute' as delay,
           (floor(bookings_gen.u(k.flight_id, p.seed, 11) * 16) - 5) * interval '1 minute' as drift,
           bookings_gen.u(k.flight_id, p.seed, 12) < 0.003 as cancelled,
           r.duration,
           p.now_ts
    from kept k
    join bookings_gen.route r using (route_id)
    cross join bookings_gen.param p
)
-- Statuses follow the original's meaning relative to bookings.now(): Scheduled until check-in opens
-- a day before departure, then On Time or Delayed, Departed once in the air, Arrived once landed.
select t.flight_id, t.route_id, t.flight_no, t.dep_airport, t.arr_airport, t.aircraft_code, t.economy_price,
       t.sched_dep, t.sched_arr,
       case when t.cancelled then 'Cancelled'
            when t.sched_dep + t.delay + t.duration + t.drift <= t.now_ts then 'Arrived'
            when t.sched_dep + t.delay <= t.now_ts then 'Departed'
            when t.sched_dep > t.now_ts + interval '1 day' then 'Scheduled'
            when t.delay >= interval '30 minutes' then 'Delayed'
            else 'On Time' end as status,
       case when not t.cancelled and t.sched_dep + t.delay <= t.now_ts then t.sched_dep + t.delay end as actual_dep,
       case when not t.cancelled and t.sched_dep + t.delay + t.duration + t.drift <= t.now_ts
            then t.sched_dep + t.delay + t.duration + t.drift end as actual_arr
from timed t;
analyze bookings_gen.flight;

insert into bookings.flights (flight_id, flight_no, scheduled_departure, scheduled_arrival, departure_airport,
                              arrival_airport, status, aircraft_code, actual_departure, actual_arrival)
select flight_id, flight_no, sched_dep, sched_arr, dep_airport, arr_airport, status, aircraft_code, actual_dep, actual_arr
from bookings_gen.flight
order by flight_id;

-- The sequence stands at the last flight, as in the original: the next flight gets the next id.
select setval('bookings.flights_flight_id_seq', (select n_flights from bookings_gen.param));

-- step: itineraries
-- Which flight a booking starts with: one slot per ten seats of a flight, so that flights fill in
-- proportion to their aircraft. Flights after now() get fewer slots the further away they are,
-- because only part of their passengers have booked yet; past 25 days, none.
create unlogged table bookings_gen.slot as
select (row_number() over (order by f.flight_id, g) - 1) as slot_no, f.flight_id
from bookings_gen.flight f
join bookings_gen.aircraft a using (aircraft_code)
cross join bookings_gen.param p
cross join lateral generate_series(1, floor(
    a.capacity / 10.0
    * case when f.sched_dep <= p.now_ts then 1.0
           else greatest(0.0, 1.0 - extract(epoch from f.sched_dep - p.now_ts) / (25 * 86400)) end
    + bookings_gen.u(f.flight_id, p.seed, 20))::int) g;
analyze bookings_gen.slot;

-- A booking: its number of tickets (one, plus the extra tickets that hash to it) and the shape of
-- its itinerary, one-way or round trip with one to three legs each way. The shapes average a few
-- percent more ticket flights than the target, for the exact trim below.
create unlogged table bookings_gen.booking as
with extra as (
    select bookings_gen.h(e, p.seed, 21) % p.n_bookings as idx, count(*) as n_extra
    from bookings_gen.param p
    cross join generate_series(0, p.n_tickets - p.n_bookings - 1) e
    group by 1
), shaped as (
    select b.idx, 1 + coalesce(x.n_extra, 0)::int as n_tickets,
           bookings_gen.u(b.idx, p.seed, 22) as shape,
           bookings_gen.h(b.idx, p.seed, 23) % (select count(*) from bookings_gen.slot) as slot_no
    from bookings_gen.param p
    cross join generate_series(0::bigint, p.n_bookings - 1) b(idx)
    left join extra x on x.idx = b.idx
)
select s.idx, s.n_tickets, sl.flight_id as first_flight,
       case when s.shape < 0.14 then 1 when s.shape < 0.28 then 2 when s.shape < 0.53 then 1
            when s.shape < 0.58 then 3 when s.shape < 0.93 then 2 else 3 end as out_legs,
       s.shape >= 0.28 and (s.shape < 0.53 or s.shape >= 0.58) as round_trip
from shaped s
join bookings_gen.slot sl on sl.slot_no = s.slot_no;
analyze bookings_gen.booking;

-- For each route and UTC day, the route's first flight on or after that day and the flight after
-- it: a connection leaving after instant t is the first of the two that departs at or after t.
create unlogged table bookings_gen.next_flight as
with f as (
    select route_id, flight_id, sched_dep, sched_arr,
           (sched_dep at time zone 'UTC')::date as dep_day,
           lag((sched_dep at time zone 'UTC')::date) over w as prev_day,
           lead(flight_id) over w as next_id,
           lead(sched_dep) over w as next_dep,
           lead(sched_arr) over w as next_arr
    from bookings_gen.flight
    window w as (partition by route_id order by sched_dep)
)
select f.route_id, g::date as day, f.flight_id, f.sched_dep, f.sched_arr, f.next_id, f.next_dep, f.next_arr
from f
cross join lateral generate_series(coalesce(f.prev_day + 1, f.dep_day - 30), f.dep_day, interval '1 day') g;
analyze bookings_gen.next_flight;

-- Where a traveller goes next from an airport: its routes, in proportion to seats offered a week.
create unlogged table bookings_gen.route_out as
select r.dep_airport as airport,
       row_number() over (partition by r.dep_airport order by r.route_id, g) - 1 as slot_no,
       r.route_id
from bookings_gen.route r
join bookings_gen.aircraft a using (aircraft_code)
cross join lateral generate_series(1, greatest(1, round(a.capacity * cardinality(r.days) / 70.0))::int) g;
analyze bookings_gen.route_out;

create unlogged table bookings_gen.airport_out as
select airport, count(*) as n_slots from bookings_gen.route_out group by airport;
analyze bookings_gen.airport_out;

create unlogged table bookings_gen.leg (
    idx bigint not null,
    leg_no int not null,
    route_id int not null,
    flight_id int not null,
    sched_dep timestamptz not null,
    sched_arr timestamptz not null
);
analyze bookings_gen.leg;

insert into bookings_gen.leg
select b.idx, 1, f.route_id, f.flight_id, f.sched_dep, f.sched_arr
from bookings_gen.booking b
join bookings_gen.flight f on f.flight_id = b.first_flight;
analyze bookings_gen.leg;

-- Legs 2 to 6, one set-based step each. An outbound leg continues from where the last one landed,
-- avoiding the way back when the airport offers another; a return leg flies the reverse route of
-- the matching outbound leg (routes 2i and 2i+1 are the two directions of pair i). A connection
-- leaves at least 40 minutes after landing, a return after a stay of one to ten days. A leg that
-- finds no flight before the end of the schedule ends the itinerary there.
do $$
declare
    m int;
begin
    for m in 2..6 loop
        insert into bookings_gen.leg
        with prev as (
            select l.idx, l.route_id, l.sched_arr, b.out_legs, b.round_trip, p.seed
            from bookings_gen.leg l
            join bookings_gen.booking b on b.idx = l.idx
            cross join bookings_gen.param p
            where l.leg_no = m - 1
              and m <= b.out_legs * case when b.round_trip then 2 else 1 end
        ), chosen as (
            select pv.idx,
                   case when m > pv.out_legs then back.route_id # 1
                        when o1.route_id = (pv.route_id # 1) then o2.route_id
                        else o1.route_id end as route_id,
                   pv.sched_arr + case
                       when m = pv.out_legs + 1 then interval '1 day' + bookings_gen.u(pv.idx * 8 + m, pv.seed, 24) * interval '9 days'
                       else interval '40 minutes' + bookings_gen.u(pv.idx * 8 + m, pv.seed, 24) * interval '3 hours' end as t_min
            from prev pv
            join bookings_gen.route r on r.route_id = pv.route_id
            join bookings_gen.airport_out ao on ao.airport = r.arr_airport
            join bookings_gen.route_out o1
              on o1.airport = r.arr_airport and o1.slot_no = bookings_gen.h(pv.idx * 8 + m, pv.seed, 25) % ao.n_slots
            join bookings_gen.route_out o2
              on o2.airport = r.arr_airport and o2.slot_no = bookings_gen.h(pv.idx * 8 + m, pv.seed, 26) % ao.n_slots
            left join bookings_gen.leg back
              on back.idx = pv.idx and back.leg_no = 2 * pv.out_legs + 1 - m
        ), found as (
            select c.idx, c.route_id,
                   case when nf.sched_dep >= c.t_min then nf.flight_id else nf.next_id end as flight_id,
                   case when nf.sched_dep >= c.t_min then nf.sched_dep else nf.next_dep end as sched_dep,
                   case when nf.sched_dep >= c.t_min then nf.sched_arr else nf.next_arr end as sched_arr
            from chosen c
            join bookings_gen.next_flight nf
              on nf.route_id = c.route_id and nf.day = (c.t_min at time zone 'UTC')::date
        )
        select idx, m, route_id, flight_id, sched_dep, sched_arr from found where flight_id is not null;
        analyze bookings_gen.leg;
    end loop;
end
$$;

-- The exact trim: drop the last leg of as many single-ticket bookings as there are ticket flights
-- over the target.
do $$
declare
    surplus bigint;
    n_trimmed bigint;
begin
    create unlogged table bookings_gen.booking_legs as
    select idx, count(*)::int as n_legs from bookings_gen.leg group by idx;

    select sum(b.n_tickets::bigint * bl.n_legs) - (select n_ticket_flights from bookings_gen.param)
      into surplus
    from bookings_gen.booking b join bookings_gen.booking_legs bl using (idx);
    if surplus < 0 then
        raise exception 'itineraries hold % ticket flights too few: the itinerary shapes need more legs', -surplus;
    end if;

    delete from bookings_gen.leg l
    using (
        select bl.idx, bl.n_legs
        from bookings_gen.booking b
        join bookings_gen.booking_legs bl using (idx)
        cross join bookings_gen.param p
        where b.n_tickets = 1 and bl.n_legs >= 2
        order by bookings_gen.h(bl.idx, p.seed, 27)
        limit surplus
    ) t
    where l.idx = t.idx and l.leg_no = t.n_legs;
    get diagnostics n_trimmed = row_count;
    if n_trimmed <> surplus then
        raise exception 'could trim only % of % surplus ticket flights', n_trimmed, surplus;
    end if;
    raise notice 'itineraries: trimmed % surplus ticket flights', surplus;
end
$$;

-- step: bookings
-- Tickets are numbered booking after booking, so the tickets of a booking are consecutive.
create unlogged table bookings_gen.ticket as
with b as (
    select idx, n_tickets, sum(n_tickets) over (order by idx) - n_tickets as first_ticket
    from bookings_gen.booking
)
select b.idx, b.first_ticket + t as ticket_idx
from b cross join lateral generate_series(0, b.n_tickets - 1) t;
analyze bookings_gen.ticket;

-- Ticket flights: every ticket of a booking on every leg of its itinerary. Passengers of a flight
-- get its seats in a seeded order (an affine permutation of the seat indexes, coprime to every
-- cabin size), and the class of the seat is the class of the fare; the few passengers past the
-- capacity of a full flight hold an Economy ticket without a seat and never board.
create unlogged table bookings_gen.tf as
with ranked as (
    select t.idx, t.ticket_idx, l.flight_id,
           row_number() over (partition by l.flight_id order by bookings_gen.h(t.ticket_idx * 8 + l.leg_no, p.seed, 30)) as rn
    from bookings_gen.ticket t
    join bookings_gen.leg l on l.idx = t.idx
    cross join bookings_gen.param p
)
select r.idx, r.ticket_idx, r.flight_id, r.rn, s.seat_no,
       coalesce(s.fare_conditions, 'Economy') as fare_conditions,
       f.economy_price * case s.fare_conditions when 'Business' then 3.0 when 'Comfort' then 1.6 else 1.0 end as amount,
       f.actual_dep is not null and s.seat_no is not null as can_board,
       bookings_gen.u(r.ticket_idx * 8 + r.rn, p.seed, 31) as show
from ranked r
join bookings_gen.flight f on f.flight_id = r.flight_id
join bookings_gen.aircraft a on a.aircraft_code = f.aircraft_code
cross join bookings_gen.param p
left join bookings_gen.seat s
  on s.aircraft_code = f.aircraft_code and r.rn <= a.capacity
 and s.seat_idx = ((r.rn - 1) * (array[11, 19, 23, 31, 41, 43, 47, 53, 59, 61])[bookings_gen.h(f.flight_id, p.seed, 32) % 10 + 1]
                   + bookings_gen.h(f.flight_id, p.seed, 33)) % a.capacity;
analyze bookings_gen.tf;

-- Booking references: six hex digits, an odd multiplier making the map from booking index a
-- permutation of 2^24, hence unique. A booking is made before its first flight (up to 30 days,
-- mostly days) and never after now().
insert into bookings.bookings (book_ref, book_date, total_amount)
select upper(lpad(to_hex((b.idx * (bookings_gen.h(0, p.seed, 40) % 8388608 * 2 + 1) + bookings_gen.h(1, p.seed, 40)) & 16777215), 6, '0')),
       date_trunc('minute', f.sched_dep - make_interval(secs =>
           lo + power(bookings_gen.u(b.idx, p.seed, 41), 2) * (30 * 86400 - lo))),
       tot.total_amount
from bookings_gen.booking b
join bookings_gen.flight f on f.flight_id = b.first_flight
join (select idx, sum(amount) as total_amount from bookings_gen.tf group by idx) tot on tot.idx = b.idx
cross join bookings_gen.param p
cross join lateral (select greatest(7200, extract(epoch from f.sched_dep - p.now_ts) + 60) as lo) l;

-- step: tickets
-- Passengers: names transliterated from Russian in capitals, as on the original's tickets (female
-- surnames take the feminine ending), a passport-like id, and contact data, sometimes incomplete.
create unlogged table bookings_gen.name_list (kind, names) as values
    ('male', array['ALEKSANDR', 'ALEKSEY', 'ANATOLIY', 'ANDREY', 'ANTON', 'ARTEM', 'BORIS', 'DENIS', 'DMITRIY',
                   'EVGENIY', 'GENNADIY', 'GEORGIY', 'IGOR', 'ILYA', 'IVAN', 'KIRILL', 'KONSTANTIN', 'LEONID',
                   'MAKSIM', 'MIKHAIL', 'NIKITA', 'NIKOLAY', 'OLEG', 'PAVEL', 'PETR', 'ROMAN', 'RUSLAN', 'SERGEY',
                   'STANISLAV', 'VADIM', 'VALERIY', 'VASILIY', 'VIKTOR', 'VITALIY', 'VLADIMIR', 'VLADISLAV',
                   'YURIY', 'ARKADIY', 'FEDOR', 'GRIGORIY']),
    ('female', array['ALEKSANDRA', 'ALINA', 'ALLA', 'ANASTASIYA', 'ANNA', 'ANTONINA', 'DARYA', 'EKATERINA',
                     'ELENA', 'ELIZAVETA', 'EVGENIYA', 'GALINA', 'INNA', 'IRINA', 'KRISTINA', 'KSENIYA', 'LARISA',
                     'LIDIYA', 'LYUBOV', 'LYUDMILA', 'MARGARITA', 'MARINA', 'MARIYA', 'NADEZHDA', 'NATALYA', 'NINA',
                     'OKSANA', 'OLGA', 'POLINA', 'RAISA', 'SOFIYA', 'SVETLANA', 'TAMARA', 'TATYANA', 'VALENTINA',
                     'VALERIYA', 'VERA', 'VIKTORIYA', 'YULIYA', 'ZINAIDA']),
    ('surname', array['IVANOV', 'SMIRNOV', 'KUZNECOV', 'POPOV', 'VASILEV', 'PETROV', 'SOKOLOV', 'MIKHAYLOV',
                      'NOVIKOV', 'FEDOROV', 'MOROZOV', 'VOLKOV', 'ALEKSEEV', 'LEBEDEV', 'SEMENOV', 'EGOROV',
                      'PAVLOV', 'KOZLOV', 'STEPANOV', 'NIKOLAEV', 'ORLOV', 'ANDREEV', 'MAKAROV', 'NIKITIN',
                      'ZAKHAROV', 'ZAYCEV', 'SOLOVEV', 'BORISOV', 'YAKOVLEV', 'GRIGOREV', 'ROMANOV', 'VOROBEV',
                      'SERGEEV', 'KUZMIN', 'FROLOV', 'ALEKSANDROV', 'DMITRIEV', 'KOROLEV', 'GUSEV', 'KISELEV',
                      'ILIN', 'MAKSIMOV', 'POLYAKOV', 'SOROKIN', 'VINOGRADOV', 'KOVALEV', 'BELOV', 'MEDVEDEV',
                      'ANTONOV', 'TARASOV', 'ZHUKOV', 'BARANOV', 'FILIPPOV', 'KOMAROV', 'DAVYDOV', 'BELYAEV',
                      'GERASIMOV', 'BOGDANOV', 'OSIPOV', 'SIDOROV', 'MATVEEV', 'TITOV', 'MARKOV', 'MIRONOV',
                      'KRYLOV', 'KULIKOV', 'KARPOV', 'VLASOV', 'MELNIKOV', 'DENISOV', 'GAVRILOV', 'TIKHONOV',
                      'KAZAKOV', 'AFANASEV', 'DANILOV', 'SAVELEV', 'TIMOFEEV', 'FOMIN', 'CHERNOV', 'ABRAMOV']);
analyze bookings_gen.name_list;

insert into bookings.tickets (ticket_no, book_ref, passenger_id, passenger_name, contact_data)
with n as (
    select (select names from bookings_gen.name_list where kind = 'male') as male,
           (select names from bookings_gen.name_list where kind = 'female') as female,
           (select names from bookings_gen.name_list where kind = 'surname') as surname
), person as (
    select t.ticket_idx, t.idx, p.seed, p.book_ref_mul, p.book_ref_add,
           bookings_gen.h(t.ticket_idx, p.seed, 50) as hid,
           bookings_gen.h(t.ticket_idx, p.seed, 51) as hphone,
           bookings_gen.u(t.ticket_idx, p.seed, 52) as contact,
           case when bookings_gen.u(t.ticket_idx, p.seed, 53) < 0.5
                then n.male[1 + bookings_gen.h(t.ticket_idx, p.seed, 54) % cardinality(n.male)]
                else n.female[1 + bookings_gen.h(t.ticket_idx, p.seed, 54) % cardinality(n.female)] end as first_name,
           bookings_gen.u(t.ticket_idx, p.seed, 53) >= 0.5 as female,
           n.surname[1 + bookings_gen.h(t.ticket_idx, p.seed, 55) % cardinality(n.surname)] as surname
    from bookings_gen.ticket t
    cross join n
    cross join (
        select seed,
               bookings_gen.h(0, seed, 40) % 8388608 * 2 + 1 as book_ref_mul,
               bookings_gen.h(1, seed, 40) as book_ref_add
        from bookings_gen.param
    ) p
), named as (
    select ps.*, ps.surname || case when ps.female then 'A' else '' end as last_name
    from person ps
)
select lpad((5432000000 + nm.ticket_idx)::text, 13, '0'),
       upper(lpad(to_hex((nm.idx * nm.book_ref_mul + nm.book_ref_add) & 16777215), 6, '0')),
       lpad((nm.hid % 10000)::text, 4, '0') || ' ' || lpad((nm.hid / 10000 % 1000000)::text, 6, '0'),
       nm.first_name || ' ' || nm.last_name,
       case when nm.contact < 0.05 then null
            when nm.contact < 0.30 then jsonb_build_object('phone', '+7' || lpad((nm.hphone % 10000000000)::text, 10, '0'))
            else jsonb_build_object(
                'email', lower(nm.first_name || '.' || nm.last_name) || '.' || (nm.hid / 10000000000 % 1000)::text || '@example.com',
                'phone', '+7' || lpad((nm.hphone % 10000000000)::text, 10, '0'))
       end
from named nm;

-- step: ticket_flights
insert into bookings.ticket_flights (ticket_no, flight_id, fare_conditions, amount)
select lpad((5432000000 + ticket_idx)::text, 13, '0'), flight_id, fare_conditions, amount
from bookings_gen.tf;

-- step: boarding_passes
-- Passengers board in seat order; the no-shows are the eligible ticket flights with the lowest
-- seeded draw, exactly as many as the eligible exceed the target.
do $$
declare
    n_eligible bigint;
    n_target bigint := (select n_boarding_passes from bookings_gen.param);
begin
    select count(*) into n_eligible from bookings_gen.tf where can_board;
    if n_eligible < n_target then
        raise exception 'only % ticket flights can board, % boarding passes needed', n_eligible, n_target;
    end if;
end
$$;

insert into bookings.boarding_passes (ticket_no, flight_id, boarding_no, seat_no)
select lpad((5432000000 + ticket_idx)::text, 13, '0'), flight_id,
       row_number() over (partition by flight_id order by rn), seat_no
from (
    select ticket_idx, flight_id, rn, seat_no
    from bookings_gen.tf
    where can_board
    order by show desc, ticket_idx, flight_id
    limit (select n_boarding_passes from bookings_gen.param)
) boarded;

-- step: cleanup
drop schema bookings_gen cascade;
reset client_min_messages;
reset timezone;
reset jit;
reset work_mem;
reset maintenance_work_mem;
