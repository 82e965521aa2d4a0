INSERT OVERWRITE TABLE sales_dev.clean_orders SELECT * FROM sales_dev.orders WHERE id IS NOT NULL;
