-- sqlite3 CLI on a database file: schema, inserts from a recursive CTE, indexes, a join,
-- aggregates, window functions, JSON, and the file read back after reopening.
.bail on
create table customers(id integer primary key, name text not null, city text);
create table orders(id integer primary key, customer integer references customers(id), amount real, day text);
with recursive n(i) as (select 1 union all select i + 1 from n where i < 500)
insert into customers(name, city) select 'customer' || i, case i % 4 when 0 then 'Lyon' when 1 then 'Oslo' when 2 then 'Lima' else 'Pune' end from n;
with recursive n(i) as (select 1 union all select i + 1 from n where i < 20000)
insert into orders(customer, amount, day) select (i * 7) % 500 + 1, (i * 13 % 1000) / 10.0, date('2024-01-01', '+' || (i % 366) || ' days') from n;
create index orders_customer on orders(customer);
select count(*), round(sum(amount), 2) from orders;
select c.city, count(*), round(avg(o.amount), 3) from orders o join customers c on c.id = o.customer group by c.city order by c.city;
select name, total from (select c.name, round(sum(o.amount), 1) as total, rank() over (order by sum(o.amount) desc) as r from customers c join orders o on o.customer = c.id group by c.id) where r <= 3;
select strftime('%m', day) as m, count(*) from orders group by m order by m limit 3;
select json_object('n', 1, 'list', json_array(1, 2, 'x'));
.mode csv
select id, name, city from customers where id in (1, 2, 250);
.mode list
pragma integrity_check;
