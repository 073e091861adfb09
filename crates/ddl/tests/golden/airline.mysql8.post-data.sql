ALTER TABLE `demo`.`boarding_passes`
  ADD CONSTRAINT `boarding_passes_flight_id_boarding_no_key` UNIQUE (`flight_id`, `boarding_no`),
  ADD CONSTRAINT `boarding_passes_flight_id_seat_no_key` UNIQUE (`flight_id`, `seat_no`);

ALTER TABLE `demo`.`flights`
  ADD CONSTRAINT `flights_flight_no_scheduled_departure_key` UNIQUE (`flight_no`, `scheduled_departure`);

ALTER TABLE `demo`.`boarding_passes`
  ADD CONSTRAINT `boarding_passes_ticket_no_fkey` FOREIGN KEY (`ticket_no`, `flight_id`) REFERENCES `demo`.`ticket_flights` (`ticket_no`, `flight_id`) ON DELETE NO ACTION ON UPDATE NO ACTION;

ALTER TABLE `demo`.`flights`
  ADD CONSTRAINT `flights_aircraft_code_fkey` FOREIGN KEY (`aircraft_code`) REFERENCES `demo`.`aircrafts_data` (`aircraft_code`) ON DELETE NO ACTION ON UPDATE NO ACTION,
  ADD CONSTRAINT `flights_arrival_airport_fkey` FOREIGN KEY (`arrival_airport`) REFERENCES `demo`.`airports_data` (`airport_code`) ON DELETE NO ACTION ON UPDATE NO ACTION,
  ADD CONSTRAINT `flights_departure_airport_fkey` FOREIGN KEY (`departure_airport`) REFERENCES `demo`.`airports_data` (`airport_code`) ON DELETE NO ACTION ON UPDATE NO ACTION;

ALTER TABLE `demo`.`seats`
  ADD CONSTRAINT `seats_aircraft_code_fkey` FOREIGN KEY (`aircraft_code`) REFERENCES `demo`.`aircrafts_data` (`aircraft_code`) ON DELETE CASCADE ON UPDATE NO ACTION;

ALTER TABLE `demo`.`ticket_flights`
  ADD CONSTRAINT `ticket_flights_flight_id_fkey` FOREIGN KEY (`flight_id`) REFERENCES `demo`.`flights` (`flight_id`) ON DELETE NO ACTION ON UPDATE NO ACTION,
  ADD CONSTRAINT `ticket_flights_ticket_no_fkey` FOREIGN KEY (`ticket_no`) REFERENCES `demo`.`tickets` (`ticket_no`) ON DELETE NO ACTION ON UPDATE NO ACTION;

ALTER TABLE `demo`.`tickets`
  ADD CONSTRAINT `tickets_book_ref_fkey` FOREIGN KEY (`book_ref`) REFERENCES `demo`.`bookings` (`book_ref`) ON DELETE NO ACTION ON UPDATE NO ACTION;

ALTER TABLE `demo`.`flights` AUTO_INCREMENT = 33122;

CREATE OR REPLACE VIEW `demo`.`flight_statuses` AS SELECT `f`.`flight_no`, JSON_UNQUOTE(JSON_EXTRACT(`dep`.`city`, '$."en"')) AS `departure_city`, CASE WHEN (`f`.`status` = 'Cancelled') THEN 'X' ELSE 'OK' END AS `mark` FROM (`demo`.`flights` `f` JOIN `demo`.`airports_data` `dep` ON (`f`.`departure_airport` = `dep`.`airport_code`)) WHERE (`f`.`actual_departure` IS NOT NULL);

