ALTER TABLE `store`.`category` AUTO_INCREMENT = 17;

ALTER TABLE `store`.`film` AUTO_INCREMENT = 1001;

CREATE OR REPLACE VIEW `store`.`concat_names` AS SELECT `c`.`country_id`, GROUP_CONCAT(`cu`.`name` ORDER BY `cu`.`name` SEPARATOR ', ') AS `names` FROM (`store`.`country` `c` LEFT JOIN `store`.`customer` `cu` ON (`cu`.`grp` = `c`.`country_id`)) GROUP BY `c`.`country_id`;

CREATE OR REPLACE VIEW `store`.`country_counts` AS SELECT `c`.`country_id`, `c`.`name`, (SELECT COUNT(*) AS `count` FROM `store`.`customer` `cu` WHERE (`cu`.`grp` = `c`.`country_id`)) AS `n_customers`, (SELECT MAX(`cu`.`name`) AS `max` FROM `store`.`customer` `cu` WHERE (`cu`.`grp` = `c`.`country_id`)) AS `last_name` FROM `store`.`country` `c` WHERE (EXISTS (SELECT 1 FROM `store`.`customer` `cu` WHERE (`cu`.`grp` = `c`.`country_id`)) OR (`c`.`country_id` > 6));

CREATE OR REPLACE VIEW `store`.`group_ids` AS SELECT `customer`.`grp`, JSON_ARRAYAGG(`customer`.`customer_id`) AS `ids` FROM `store`.`customer` GROUP BY `customer`.`grp`;

CREATE OR REPLACE VIEW `store`.`group_names` AS SELECT `c`.`country_id`, `c`.`name` AS `country`, GROUP_CONCAT(`cu`.`name` ORDER BY `cu`.`name` SEPARATOR ', ') AS `names`, COUNT(CASE WHEN (`cu`.`name` IS NOT NULL) THEN `cu`.`customer_id` END) AS `n_named` FROM (`store`.`country` `c` LEFT JOIN `store`.`customer` `cu` ON (`cu`.`grp` = `c`.`country_id`)) GROUP BY `c`.`country_id`, `c`.`name`;

ALTER TABLE `store`.`category` MODIFY COLUMN `last_update` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6);

ALTER TABLE `store`.`film` MODIFY COLUMN `last_update` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), MODIFY COLUMN `checked` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'the checked' ON UPDATE CURRENT_TIMESTAMP(3);

CREATE TRIGGER `store`.`film_film_checks_upd` BEFORE UPDATE ON `store`.`film` FOR EACH ROW BEGIN IF (NEW.`title` = '') THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a film needs a title'; END IF; SET NEW.`title` = TRIM(NEW.`title`); SET NEW.`note` = CONCAT(CONCAT(CONCAT(LOWER(NEW.`title`), ' (was '), COALESCE(OLD.`title`, '?')), ')'); END;

ALTER TABLE `store`.`payment` MODIFY COLUMN `last_update` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6);

