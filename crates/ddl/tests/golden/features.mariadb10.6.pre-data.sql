CREATE DATABASE IF NOT EXISTS `shop` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;

CREATE SEQUENCE `shop`.`ticket_numbers` START WITH 1000 INCREMENT BY 10 MINVALUE 1 MAXVALUE 9223372036854775806 NOCYCLE;

CREATE TABLE `shop`.`notes_with_a_name_as_long_as_postgresql_allows_sixty_three_chars` (
  `order_id` BIGINT NOT NULL COMMENT 'the order_id',
  `body` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin,
  `weight` INT NOT NULL COMMENT 'the weight',
  CONSTRAINT `notes_with_a_name_as_long_as_postgresql_allows_sixty_th_3648f623` CHECK ((`weight` > 0))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

CREATE TABLE `shop`.`orders` (
  `id` BIGINT NOT NULL AUTO_INCREMENT COMMENT 'the id',
  `mood` ENUM('sad','ok','happy') CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT 'ok' COMMENT 'the mood',
  `price` DECIMAL(12,3) COMMENT 'the price',
  `total` DECIMAL(12,3) GENERATED ALWAYS AS ((`price` * 2)) STORED COMMENT 'the total',
  `code` VARCHAR(768) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL COMMENT 'the code',
  `created` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  `ticket` INT DEFAULT NEXTVAL(`shop`.`ticket_numbers`) COMMENT 'the ticket',
  `qty` INT NOT NULL COMMENT 'the qty',
  `home` JSON COMMENT 'the home',
  `tags` JSON COMMENT 'the tags',
  `span` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin COMMENT 'the span',
  `token` CHAR(36) CHARACTER SET ascii COLLATE ascii_bin COMMENT 'the token',
  `shape` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin COMMENT 'the shape',
  `doc` JSON COMMENT 'the doc',
  PRIMARY KEY (`id`),
  CONSTRAINT `orders_qty_positive_int_check` CHECK ((`qty` > 0)),
  CONSTRAINT `orders_code_check` CHECK ((CHAR_LENGTH(`code`) >= 2))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

