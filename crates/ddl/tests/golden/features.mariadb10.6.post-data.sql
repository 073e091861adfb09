ALTER TABLE `shop`.`orders`
  ADD CONSTRAINT `orders_code_key` UNIQUE (`code`),
  ADD COLUMN `orders_lower_code_k1` VARCHAR(768) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin GENERATED ALWAYS AS (LOWER(`code`)) VIRTUAL INVISIBLE,
  ADD INDEX `orders_lower_code` (`orders_lower_code_k1`),
  ADD COLUMN `orders_happy_price_k1` DECIMAL(12,3) GENERATED ALWAYS AS (CASE WHEN (`mood` = 'happy') THEN `price` END) VIRTUAL INVISIBLE,
  ADD UNIQUE INDEX `orders_happy_price` (`orders_happy_price_k1` DESC);

ALTER TABLE `shop`.`notes_with_a_name_as_long_as_postgresql_allows_sixty_three_chars`
  ADD CONSTRAINT `notes_order_fkey` FOREIGN KEY (`order_id`) REFERENCES `shop`.`orders` (`id`) ON DELETE CASCADE ON UPDATE NO ACTION;

ALTER TABLE `shop`.`orders` AUTO_INCREMENT = 1;

SELECT SETVAL(`shop`.`ticket_numbers`, 1010);

CREATE TABLE `shop`.`order_counts` AS SELECT COUNT(*) AS `n` FROM `shop`.`orders`;

